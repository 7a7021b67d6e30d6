"""Shared helpers of the sampler tests: a tiny random model with lively (non-repeating) greedy outputs."""

from __future__ import annotations

import functools
import tempfile

import jax
import numpy as np
import torch

from hf_fixtures import tiny_hf_model
from urlvr_jax.model import hf_io
from urlvr_jax.model.transformer import forward

SCALE = 6.0  # the 0.02 init makes a tiny model repeat one token; larger weights give varied text


@functools.lru_cache(maxsize=None)
def tiny_model(family: str = "llama", seed: int = 0):
    """(transformers model, our config, our params) with identical, scaled-up random weights."""
    model = tiny_hf_model(family, seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" not in name:
                p.mul_(SCALE)
    path = tempfile.mkdtemp(prefix=f"tiny_{family}_")
    model.save_pretrained(path)
    cfg, params = hf_io.load_hf(path)
    return model, cfg, params


def left_padded(lengths, vocab: int, seed: int = 0, width: int | None = None, pad_id: int = 0):
    """Random left-padded prompts [B, width] of the given lengths (tokens drawn from [3, vocab))."""
    rng = np.random.default_rng(seed)
    width = width or max(lengths)
    tokens = np.full((len(lengths), width), pad_id, np.int32)
    mask = np.zeros((len(lengths), width), bool)
    for row, n in enumerate(lengths):
        tokens[row, width - n:] = rng.integers(3, vocab, n)
        mask[row, width - n:] = True
    return tokens, mask


def hf_greedy(model, tokens, mask, new_tokens: int, eos_token_id=None) -> np.ndarray:
    """transformers ``generate(do_sample=False)`` completions [B, new_tokens] (pad 0 after EOS)."""
    with torch.no_grad():
        out = model.generate(input_ids=torch.as_tensor(tokens, dtype=torch.long),
                             attention_mask=torch.as_tensor(mask, dtype=torch.long), do_sample=False,
                             max_new_tokens=new_tokens, pad_token_id=0, eos_token_id=eos_token_id)
    out = out[:, tokens.shape[1]:].numpy()
    return np.pad(out, ((0, 0), (0, new_tokens - out.shape[1])))


@functools.lru_cache(maxsize=None)
def cached_sampler(cfg, sampling, mesh=None, buckets=None):
    """One Sampler (so one set of compiled programs) per configuration across the test session."""
    from urlvr_jax.sampling.sampler import DEFAULT_BUCKETS, Sampler

    return Sampler(cfg, sampling, mesh=mesh, buckets=buckets or DEFAULT_BUCKETS)


def _stats_fn():
    from urlvr_jax.sampling.logprobs import completion_stats

    return jax.jit(completion_stats, static_argnames=("cfg", "temperature", "chunk_size", "remat"))


jitted_completion_stats = _stats_fn()
jitted_forward = jax.jit(lambda params, tokens, mask, cfg: forward(params, tokens, token_mask=mask, cfg=cfg)[0],
                         static_argnames=("cfg",))
