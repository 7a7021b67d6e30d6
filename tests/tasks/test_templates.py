"""Prompt templates, with and without a chat template."""

import pytest

from urlvr_jax.tasks.char_tokenizer import make_char_tokenizer
from urlvr_jax.tasks.templates import BOXED_INSTRUCTION, format_prompt, plain_prompt, user_message

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


@pytest.fixture(scope="module")
def plain_tok():
    return make_char_tokenizer()


@pytest.fixture(scope="module")
def chat_tok():
    tok = make_char_tokenizer()
    tok.chat_template = CHAT_TEMPLATE
    return tok


def test_user_messages():
    assert user_message("What is 2+2?") == "What is 2+2?\n" + BOXED_INSTRUCTION
    assert "\\boxed{}" in BOXED_INSTRUCTION and "step by step" in BOXED_INSTRUCTION
    assert user_message("q", "countdown") == "q" and user_message("q", "raw") == "q"
    with pytest.raises(ValueError, match="unknown prompt template 'fancy'"):
        user_message("q", "fancy")


def test_plain_prompts(plain_tok):
    assert format_prompt(plain_tok, "7+5=", template="raw") == "7+5="
    boxed = format_prompt(plain_tok, "What is 2+2?")
    assert boxed == plain_prompt("What is 2+2?") and boxed.startswith("Question: What is 2+2?\n")
    assert BOXED_INSTRUCTION in boxed
    countdown = format_prompt(plain_tok, "Use [1, 2] to make 3.", template="countdown")
    assert "User: Use [1, 2] to make 3." in countdown and countdown.endswith("<think>")


def test_chat_template_used_when_present(chat_tok):
    text = format_prompt(chat_tok, "What is 2+2?")
    assert text == f"<|user|>What is 2+2?\n{BOXED_INSTRUCTION}\n<|assistant|>"
    with_system = format_prompt(chat_tok, "q", template="raw", system="Be brief.")
    assert with_system == "<|system|>Be brief.\n<|user|>q\n<|assistant|>"
    assert format_prompt(chat_tok, "q", template="raw", use_chat_template=False) == "q"


def test_chat_template_required_but_missing(plain_tok):
    with pytest.raises(ValueError, match="no chat_template"):
        format_prompt(plain_tok, "q", use_chat_template=True)
    with pytest.raises(ValueError, match="use_chat_template"):
        format_prompt(plain_tok, "q", use_chat_template="yes")
