"""Per-token statistics of a next-token distribution, computed without keeping full logits.

All statistics are of the temperature-scaled distribution p = softmax(z), z = logits / tau, in float32. One pass
of ``exp`` over the vocabulary (:func:`scaled_softmax`) serves every statistic and, in the sampler, the choice
of the next token. The sampler calls :func:`token_stats` on [B, V] logits at each decode step; training calls it
on [B, T, V] logits (:mod:`urlvr_jax.sampling.logprobs`).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp


class ScaledSoftmax(NamedTuple):
    """p = softmax(z) kept as ``exp / total`` with exp = e^(z - shift), shift = max z (no gradient flows through it:
    every formula below is exact for any constant shift)."""

    z: jax.Array  # [..., V] float32 logits / temperature
    shift: jax.Array  # [..., 1]
    exp: jax.Array  # [..., V]
    total: jax.Array  # [...]

    def is_max(self) -> jax.Array:
        return self.z == self.shift

    def first_max(self) -> jax.Array:
        """The index of the largest z (the first on ties), as ``argmax`` gives it."""
        vocab = self.z.shape[-1]
        index = jax.lax.broadcasted_iota(jnp.int32, self.z.shape, self.z.ndim - 1)
        return jnp.min(jnp.where(self.is_max(), index, vocab), axis=-1)


def scaled_softmax(logits: jax.Array, temperature: float | jax.Array = 1.0) -> ScaledSoftmax:
    """softmax(logits / temperature) in float32 (temperature 0 is treated as a tiny positive value)."""
    z = logits.astype(jnp.float32) / jnp.maximum(jnp.asarray(temperature, jnp.float32), 1e-6)
    shift = jax.lax.stop_gradient(jnp.max(z, axis=-1, keepdims=True))
    exp = jnp.exp(z - shift)
    return ScaledSoftmax(z=z, shift=shift, exp=exp, total=jnp.sum(exp, axis=-1))


def token_stats(logits: jax.Array, tokens: jax.Array, temperature: float | jax.Array = 1.0) -> dict[str, jax.Array]:
    """Statistics of p = softmax(logits / temperature) at the chosen ``tokens``.

    Args:
      logits: [..., V] raw logits, or their :class:`ScaledSoftmax` (then ``temperature`` is unused).
      tokens: [...] int, the token whose log-probability is reported.
      temperature: sampling temperature (0 is treated as a tiny positive value).

    Returns a dict of [...] float32 arrays:
      ``logprobs``: log p(token); ``entropy``: -sum p log p;
      ``self_certainty``: logsumexp(z) - mean(z), which is KL(U || p) + log V; ``margin``: top-1 minus top-2
      probability (0 on ties).
    """
    d = logits if isinstance(logits, ScaledSoftmax) else scaled_softmax(logits, temperature)
    log_total = jnp.log(d.total)
    shift = d.shift[..., 0]
    z_token = jnp.take_along_axis(d.z, tokens[..., None].astype(jnp.int32), axis=-1)[..., 0]
    # -sum p log p = log(total) - sum exp * (z - shift) / total; tokens with p = 0 contribute 0
    weighted = jnp.sum(jnp.where(d.exp > 0, d.exp * (d.z - d.shift), 0.0), axis=-1)
    return {
        "logprobs": z_token - shift - log_total,
        "entropy": log_total - weighted / d.total,
        "self_certainty": shift + log_total - jnp.mean(d.z, axis=-1),
        "margin": top2_margin(d),
    }


def top2_margin(d: ScaledSoftmax) -> jax.Array:
    """Largest minus second-largest probability (0 on ties).

    Masked max-reductions instead of ``lax.top_k``, which XLA:CPU lowers to a full sort of the vocabulary. The
    top probability is 1 / total (its exp is 1).
    """
    is_max = d.is_max()
    second = jnp.max(jnp.where(is_max, -jnp.inf, d.z), axis=-1)
    tie = jnp.sum(is_max, axis=-1) > 1
    return jnp.where(tie, 0.0, (1.0 - jnp.exp(second - d.shift[..., 0])) / d.total)
