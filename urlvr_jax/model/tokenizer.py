"""Tokenizers through transformers' ``AutoTokenizer``, set up for left-padded batched sampling."""

from __future__ import annotations

import os

import numpy as np


def load_tokenizer(path: str, gguf_file: str | None = None):
    """``AutoTokenizer`` for a model directory (or a ``.gguf`` file), padding on the left.

    A tokenizer without a pad token pads with its EOS token.
    """
    from transformers import AutoTokenizer

    if path.endswith(".gguf") and gguf_file is None:
        path, gguf_file = os.path.dirname(path) or ".", os.path.basename(path)
    if gguf_file:
        from urlvr_jax.model.hf_io import require_gguf_extra

        require_gguf_extra(os.path.join(path, gguf_file))  # (before reading it: the weights come next)
    kwargs = {"gguf_file": gguf_file} if gguf_file else {}
    tokenizer = AutoTokenizer.from_pretrained(path, **kwargs)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise ValueError(f"tokenizer at {path}: has neither a pad nor an EOS token; set one before sampling")
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def encode_batch(tokenizer, texts: list[str], add_special_tokens: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Left-padded token ids [B, P] int32 and mask [B, P] bool."""
    enc = tokenizer(list(texts), padding=True, add_special_tokens=add_special_tokens, return_tensors="np")
    return enc["input_ids"].astype(np.int32), enc["attention_mask"].astype(bool)


def decode_completions(tokenizer, tokens: np.ndarray, mask: np.ndarray) -> list[str]:
    """Texts of right-padded completions (masked tokens dropped, special tokens skipped)."""
    return [tokenizer.decode(row[m], skip_special_tokens=True) for row, m in zip(np.asarray(tokens), np.asarray(mask))]
