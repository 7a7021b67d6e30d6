"""Grouped-query softmax attention with a hand-written backward pass.

:func:`attend` is ``softmax(q kᵀ / sqrt(Dh), masked) v`` per (batch, kv-head), with the G query heads of a kv-head
stacked along the query axis. Its gradient is the textbook one,

    dP = dO vᵀ,   dS = mask ∘ P ∘ (dP − rowsum(dO ∘ O)) / sqrt(Dh),   dQ = dS k,   dKᵀ = Qᵀ dS,   dV = (dOᵀ P)ᵀ,

with every product written as a plain ``[M, K] x [K, N]`` batched matmul and the small operands (q, k, v, dO)
transposed explicitly. Autodiff of the forward pass contracts P and dS over their query axis instead, which
XLA:CPU runs as slow transposed-operand batched matmuls (about twice the time of this backward on the tiny GRPO
model); on any backend it is the same arithmetic.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

MASKED = -1e30  # the score of a masked key (finite, so a row with no visible key is uniform, not NaN)


def _where_visible(mask, x, fill):
    """x [B, Hkv, G*S, K] where mask [B, S, K] (shared by the G query heads of a kv-head), else ``fill``."""
    B, Hkv, rows, K = x.shape
    return jnp.where(mask[:, None, None], x.reshape(B, Hkv, rows // mask.shape[1], -1, K), fill).reshape(x.shape)


def _probs(q, k, mask):
    """Softmax probabilities [B, Hkv, G*S, K] (float32) of q [B, Hkv, G*S, Dh], k [B, Hkv, Dh, K], mask [B, S, K]."""
    scores = jnp.matmul(q, k, preferred_element_type=jnp.float32) / np.sqrt(q.shape[-1])
    return jax.nn.softmax(_where_visible(mask, scores, MASKED), axis=-1)


@jax.custom_vjp
def attend(q: jax.Array, k: jax.Array, v: jax.Array, mask: jax.Array) -> jax.Array:
    """Attention output [B, Hkv, G*S, Dh] (float32).

    Args:
      q: [B, Hkv, G*S, Dh] queries, rows ordered (group, position).
      k: [B, Hkv, Dh, K] keys, transposed (slots minor), as the KV cache stores them.
      v: [B, Hkv, K, Dh] values.
      mask: [B, S, K] bool, True where position s may attend to slot k.
    """
    return _attend_fwd(q, k, v, mask)[0]


def _attend_fwd(q, k, v, mask):
    probs = _probs(q, k, mask).astype(v.dtype)
    out = jnp.matmul(probs, v, preferred_element_type=jnp.float32)
    return out, (q, k, v, mask, probs, out)


def _attend_bwd(residuals, d_out):
    q, k, v, mask, probs, out = residuals
    f32 = jnp.float32
    t = lambda x: jnp.swapaxes(x, -1, -2)
    d_probs = jnp.matmul(d_out.astype(v.dtype), t(v), preferred_element_type=f32)
    row_dot = jnp.sum(d_out * out, axis=-1, keepdims=True)  # = rowsum(P ∘ dP)
    d_scores = probs.astype(f32) * (d_probs - row_dot) / np.sqrt(q.shape[-1])
    # a masked score is the constant MASKED: no gradient (this matters only for a row that sees no key, whose
    # probabilities are uniform rather than zero on the masked slots)
    d_scores = _where_visible(mask, d_scores, 0.0)
    dq = jnp.matmul(d_scores.astype(k.dtype), t(k), preferred_element_type=f32)
    dk = jnp.matmul(t(q), d_scores.astype(q.dtype), preferred_element_type=f32)
    dv = t(jnp.matmul(t(d_out).astype(probs.dtype), probs, preferred_element_type=f32))
    return dq.astype(q.dtype), dk.astype(k.dtype), dv.astype(v.dtype), None


attend.defvjp(_attend_fwd, _attend_bwd)
