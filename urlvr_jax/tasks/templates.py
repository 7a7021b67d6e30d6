"""Prompt templates.

Each template turns a question into a user message; ``format_prompt`` then either applies the tokenizer's
chat template (``add_generation_prompt=True``) or, for tokenizers without one, a plain-text wrapper:

=========== ============================================================ ==========================================
template    user message                                                 plain-text prompt (no chat template)
=========== ============================================================ ==========================================
boxed       question + "\\n" + ``BOXED_INSTRUCTION``                     ``Question: <msg>\\nAnswer: Let's think...``
countdown   question (it already asks for ``<answer>`` tags)             User/Assistant preamble ending in ``<think>``
raw         question                                                     question, unchanged (tiny char models)
=========== ============================================================ ==========================================
"""

from __future__ import annotations

from typing import Any, Literal

BOXED_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."

COUNTDOWN_PREAMBLE = (
    "A conversation between a User and an Assistant. The User gives a puzzle and the Assistant solves it: "
    "it first reasons about the puzzle, then states the final answer."
)

TEMPLATES = ("boxed", "countdown", "raw")


def user_message(question: str, template: str = "boxed") -> str:
    """The user-turn text for ``question`` under ``template``."""
    if template == "boxed":
        return f"{question}\n{BOXED_INSTRUCTION}"
    if template in ("countdown", "raw"):
        return question
    raise ValueError(f"unknown prompt template {template!r}; expected one of {TEMPLATES}")


def plain_prompt(question: str, template: str = "boxed") -> str:
    """The full prompt text for a model without a chat template."""
    message = user_message(question, template)
    if template == "boxed":
        return f"Question: {message}\nAnswer: Let's think step by step.\n"
    if template == "countdown":
        return f"{COUNTDOWN_PREAMBLE}\nUser: {message}\nAssistant: Let me solve this step by step.\n<think>"
    return message


def has_chat_template(tokenizer: Any) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def format_prompt(tokenizer: Any, question: str, template: str = "boxed",
                  use_chat_template: bool | Literal["auto"] = "auto", system: str | None = None) -> str:
    """The prompt string for ``question``.

    ``use_chat_template``: ``"auto"`` uses the tokenizer's chat template when it has one, ``True`` requires it,
    ``False`` always uses the plain template. ``system`` is an optional system message (chat templates only).
    """
    if use_chat_template not in ("auto", True, False):
        raise ValueError(f"use_chat_template must be 'auto', True or False, got {use_chat_template!r}")
    use_chat = has_chat_template(tokenizer) if use_chat_template == "auto" else use_chat_template
    if not use_chat:
        return plain_prompt(question, template)
    if not has_chat_template(tokenizer):
        raise ValueError(f"use_chat_template=True but tokenizer {type(tokenizer).__name__} has no chat_template")
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": user_message(question, template)})
    return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
