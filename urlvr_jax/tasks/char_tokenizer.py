"""A tiny character-level tokenizer for CPU experiments, built with ``tokenizers`` and wrapped as
``transformers.PreTrainedTokenizerFast``.

Ids: ``<pad>``=0, ``<bos>``=1, ``<eos>``=2, ``<unk>``=3, then one id per character of ``chars`` in order.
Every character is its own token (whitespace included); characters outside the vocabulary map to
``<unk>``. With ``add_bos=True`` (default) encoding prepends ``<bos>``; no ``<eos>`` is appended and
there is no chat template. Save with ``save_pretrained(dir)``; load with ``AutoTokenizer.from_pretrained(dir)``.
"""

from __future__ import annotations

import string

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIAL_TOKENS = (PAD, BOS, EOS, UNK)

#: Printable ASCII (space to ``~``) plus newline: enough for the compact and boxed arithmetic and Countdown.
DEFAULT_CHARS = "".join(chr(c) for c in range(32, 127)) + "\n"
#: Just what the compact arithmetic format needs.
ARITHMETIC_CHARS = string.digits + "+-*()= "


def make_char_tokenizer(chars: str = DEFAULT_CHARS, add_bos: bool = True,
                        model_max_length: int = 512) -> PreTrainedTokenizerFast:
    """A character-level ``PreTrainedTokenizerFast`` over ``chars`` (duplicates are an error)."""
    if not chars:
        raise ValueError("chars must not be empty")
    duplicates = sorted({c for c in chars if chars.count(c) > 1})
    if duplicates:
        raise ValueError(f"chars contains duplicates: {duplicates!r}")
    vocab = {token: i for i, token in enumerate(SPECIAL_TOKENS)}
    vocab.update({c: len(SPECIAL_TOKENS) + i for i, c in enumerate(chars)})

    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    backend.decoder = decoders.Fuse()
    backend.add_special_tokens(list(SPECIAL_TOKENS))
    if add_bos:
        backend.post_processor = processors.TemplateProcessing(
            single=f"{BOS} $A", pair=f"{BOS} $A $B", special_tokens=[(BOS, vocab[BOS])])
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token=PAD, bos_token=BOS, eos_token=EOS, unk_token=UNK,
        model_max_length=model_max_length, clean_up_tokenization_spaces=False)
