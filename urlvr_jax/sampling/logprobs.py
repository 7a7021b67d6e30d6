"""Per-token log-probs (and statistics) of completions under a params pytree, for training.

The same :func:`urlvr_jax.sampling.stats.token_stats` as the sampler, at the sampling temperature, in
float32. The LM head runs over the sequence in chunks of ``chunk_size`` positions, so [B, T, V] logits
never exist at once (``chunk_size=None``: one chunk).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from urlvr_jax.model.config import ModelConfig
from urlvr_jax.model.transformer import Params, forward_hidden, logits_from_hidden
from urlvr_jax.sampling.stats import token_stats


def completion_stats(params: Params, prompt_tokens: jax.Array, prompt_mask: jax.Array, tokens: jax.Array,
                     mask: jax.Array, *, cfg: ModelConfig, temperature: float = 1.0, chunk_size: int | None = None,
                     remat: bool = False) -> dict[str, jax.Array]:
    """Statistics [B, T] of each completion token given its prompt (zero where ``mask`` is False).

    Args:
      prompt_tokens, prompt_mask: [B, P] left-padded prompts.
      tokens, mask: [B, T] right-padded completions.
    Returns the dict of :func:`token_stats` (``logprobs``, ``entropy``, ``self_certainty``, ``margin``).
    """
    P, T = prompt_tokens.shape[1], tokens.shape[1]
    full_tokens = jnp.concatenate([prompt_tokens, tokens], axis=1)
    full_mask = jnp.concatenate([prompt_mask, mask], axis=1)
    hidden, _ = forward_hidden(params, full_tokens, token_mask=full_mask, cfg=cfg, remat=remat)
    hidden = hidden[:, P - 1:P + T - 1]  # position P - 1 + t predicts completion token t

    def stats_of(h, y):
        return token_stats(logits_from_hidden(params, h), y, temperature)

    chunk = T if not chunk_size or chunk_size >= T else chunk_size
    if chunk == T:
        stats = stats_of(hidden, tokens)
    else:
        pad = -T % chunk
        h = jnp.pad(hidden, ((0, 0), (0, pad), (0, 0)))
        y = jnp.pad(tokens, ((0, 0), (0, pad)))
        n = (T + pad) // chunk
        split = lambda x: jnp.moveaxis(x.reshape(x.shape[0], n, chunk, *x.shape[2:]), 1, 0)
        stats = jax.lax.map(lambda args: stats_of(*args), (split(h), split(y)))
        stats = {k: jnp.moveaxis(v, 0, 1).reshape(v.shape[1], -1)[:, :T] for k, v in stats.items()}
    return {k: jnp.where(mask, v, 0.0) for k, v in stats.items()}


def completion_logprobs(params: Params, prompt_tokens, prompt_mask, tokens, mask, *, cfg: ModelConfig,
                        temperature: float = 1.0, chunk_size: int | None = None, remat: bool = False) -> jax.Array:
    """Log-probs [B, T] of the completion tokens (see :func:`completion_stats`)."""
    return completion_stats(params, prompt_tokens, prompt_mask, tokens, mask, cfg=cfg, temperature=temperature,
                            chunk_size=chunk_size, remat=remat)["logprobs"]
