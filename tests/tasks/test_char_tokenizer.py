"""The character-level tokenizer: ids, round trip, save/load."""

import pytest
from transformers import AutoTokenizer

from urlvr_jax.tasks.char_tokenizer import ARITHMETIC_CHARS, DEFAULT_CHARS, make_char_tokenizer


@pytest.fixture(scope="module")
def tok():
    return make_char_tokenizer()


def test_special_ids_and_vocab(tok):
    assert (tok.pad_token_id, tok.bos_token_id, tok.eos_token_id, tok.unk_token_id) == (0, 1, 2, 3)
    assert len(tok) == 4 + len(DEFAULT_CHARS)
    assert tok.convert_tokens_to_ids("0") == 4 + DEFAULT_CHARS.index("0")
    assert not tok.chat_template


@pytest.mark.parametrize("text", ["7+5*3=7+15=22", "Compute (7 + 5) * 3.\n\\boxed{32}", "  two  spaces ",
                                  "<answer>(1 + 2) * 3</answer>"])
def test_round_trip(tok, text):
    ids = tok(text)["input_ids"]
    assert ids[0] == tok.bos_token_id and len(ids) == len(text) + 1  # one token per character
    assert tok.decode(ids, skip_special_tokens=True) == text


def test_unknown_chars_and_no_bos():
    small = make_char_tokenizer(ARITHMETIC_CHARS, add_bos=False)
    ids = small("1+x=")["input_ids"]
    assert ids == [small.convert_tokens_to_ids("1"), small.convert_tokens_to_ids("+"), 3,
                   small.convert_tokens_to_ids("=")]
    assert small.decode(ids) == "1+<unk>="


def test_batch_padding(tok):
    batch = tok(["1+1=", "12*3="], padding=True)
    assert [len(row) for row in batch["input_ids"]] == [6, 6]
    assert batch["input_ids"][0][-1] == tok.pad_token_id and batch["attention_mask"][0][-1] == 0


def test_save_and_load(tok, tmp_path):
    tok.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    text = "98*54-6=5286\n"
    assert loaded(text)["input_ids"] == tok(text)["input_ids"]
    assert loaded.decode(loaded(text)["input_ids"], skip_special_tokens=True) == text
    assert (loaded.pad_token, loaded.eos_token_id, len(loaded)) == ("<pad>", 2, len(tok))


def test_bad_chars():
    with pytest.raises(ValueError, match="duplicates"):
        make_char_tokenizer("aba")
    with pytest.raises(ValueError, match="empty"):
        make_char_tokenizer("")
