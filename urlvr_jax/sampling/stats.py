"""Per-token statistics of a next-token distribution, computed without keeping full logits.

All statistics are of the temperature-scaled distribution p = softmax(z / tau), in float32.
The sampler calls :func:`token_stats` once per decode step on [B, V] logits; training calls
:func:`sequence_token_stats` on [B, T, V] logits (it is the same function, vectorised).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def scaled_log_softmax(logits: jax.Array, temperature: float | jax.Array) -> tuple[jax.Array, jax.Array]:
    """Returns (temperature-scaled logits, their log-softmax), both float32."""
    z = logits.astype(jnp.float32) / jnp.maximum(jnp.asarray(temperature, jnp.float32), 1e-6)
    return z, jax.nn.log_softmax(z, axis=-1)


def token_stats(logits: jax.Array, tokens: jax.Array, temperature: float | jax.Array = 1.0) -> dict[str, jax.Array]:
    """Statistics of p = softmax(logits / temperature) at the chosen ``tokens``.

    Args:
      logits: [..., V] raw logits.
      tokens: [...] int, the token whose log-probability is reported.
      temperature: sampling temperature (0 is treated as a tiny positive value).

    Returns a dict of [...] float32 arrays:
      ``logprobs``: log p(token); ``entropy``: -sum p log p;
      ``self_certainty``: logsumexp(z) - mean(z) with z = logits / temperature, which is
      KL(U || p) + log V; ``margin``: top-1 minus top-2 probability.
    """
    z, logp = scaled_log_softmax(logits, temperature)
    p = jnp.exp(logp)
    chosen = jnp.take_along_axis(logp, tokens[..., None].astype(jnp.int32), axis=-1)[..., 0]
    entropy = -jnp.sum(jnp.where(p > 0, p * logp, 0.0), axis=-1)
    self_certainty = jax.nn.logsumexp(z, axis=-1) - jnp.mean(z, axis=-1)
    return {
        "logprobs": chosen,
        "entropy": entropy,
        "self_certainty": self_certainty,
        "margin": top2_margin(p),
    }


def top2_margin(p: jax.Array) -> jax.Array:
    """Largest minus second-largest entry over the last axis (0 on ties).

    Two max-reductions instead of ``lax.top_k``, which XLA:CPU lowers to a full sort of the vocabulary.
    """
    first = jnp.argmax(p, axis=-1)
    top1 = jnp.take_along_axis(p, first[..., None], axis=-1)[..., 0]
    rest = jnp.where(jnp.arange(p.shape[-1]) == first[..., None], -jnp.inf, p)
    return top1 - jnp.max(rest, axis=-1)
