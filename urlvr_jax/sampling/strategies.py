"""Choosing the next token: greedy, temperature, top-k and top-p, by inverse CDF at one uniform per row."""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp

from urlvr_jax.sampling.stats import ScaledSoftmax

_NEG_INF = -jnp.inf


@dataclasses.dataclass(frozen=True)
class SamplingConfig:
    """How to sample. ``temperature == 0`` is greedy; ``top_k == 0`` and ``top_p == 1`` switch those filters off.

    ``stop_token_ids``: a row stops after emitting one of them (the stop token is kept, and masked in). With no
    stop ids every row runs for ``max_new_tokens`` and is reported as not finished.
    ``stats_temperature``: the per-token statistics are of softmax(logits / temperature) before top-k/top-p
    filtering; under greedy decoding (temperature 0) they are taken at temperature 1.
    """

    max_new_tokens: int
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    stop_token_ids: tuple[int, ...] = ()
    pad_id: int = 0

    def __post_init__(self):
        if self.max_new_tokens < 1:
            raise ValueError(f"SamplingConfig.max_new_tokens={self.max_new_tokens} must be >= 1")
        if self.temperature < 0:
            raise ValueError(f"SamplingConfig.temperature={self.temperature} must be >= 0")
        if self.top_k < 0:
            raise ValueError(f"SamplingConfig.top_k={self.top_k} must be >= 0 (0 = no top-k filter)")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"SamplingConfig.top_p={self.top_p} must be in (0, 1]")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0

    @property
    def stats_temperature(self) -> float:
        return self.temperature if self.temperature > 0 else 1.0


def filter_logits(z: jax.Array, top_k: int, top_p: float) -> jax.Array:
    """Masks (to -inf) temperature-scaled logits z [B, V] outside the top-k and the top-p nucleus; returns ``z``
    itself when neither filter applies."""
    if top_k and top_k < z.shape[-1]:
        kth = jax.lax.top_k(z, top_k)[0][..., -1:]
        z = jnp.where(z < kth, _NEG_INF, z)
    if top_p < 1.0:
        sorted_z = jnp.sort(z, axis=-1)[..., ::-1]
        probs = jax.nn.softmax(sorted_z, axis=-1)
        # Keep the smallest prefix whose mass reaches top_p: token i stays if the mass before it is < top_p.
        mass_before = jnp.cumsum(probs, axis=-1) - probs
        keep = mass_before < top_p
        threshold = jnp.min(jnp.where(keep, sorted_z, jnp.inf), axis=-1, keepdims=True)
        z = jnp.where(z < threshold, _NEG_INF, z)
    return z


def choose_tokens(dist: ScaledSoftmax, uniforms: jax.Array, config: SamplingConfig) -> jax.Array:
    """Next tokens [B] of the distribution ``scaled_softmax(logits, config.stats_temperature)``, row b by inverse
    CDF at ``uniforms[b]`` in [0, 1) (unused if greedy).

    The statistics and the sampler share that one softmax: without top-k/top-p it is the sampling distribution
    (its temperature is ``config.temperature``), and greedy decoding takes its first maximum, ``argmax(logits)``.
    """
    if config.greedy:
        return dist.first_max()
    z = filter_logits(dist.z, config.top_k, config.top_p)
    if z is dist.z:  # no filter applied: sample from the shared softmax
        return inverse_cdf_sample(dist.exp, uniforms)
    return inverse_cdf_sample(jax.nn.softmax(z, axis=-1), uniforms)


def inverse_cdf_sample(probs: jax.Array, uniforms: jax.Array, block: int | None = None) -> jax.Array:
    """Token i of row b such that cdf[i - 1] < (1 - u_b) * total <= cdf[i], for probs [B, V] (normalised or not)
    and u [B] in [0, 1).

    One uniform per row instead of V Gumbel draws (V threefry draws per row dominate a CPU decode step). The
    CDF is two-level (block masses, then one block) with cumulative sums as small triangular matmuls, so the
    cost is one pass over the probabilities. A zero-probability token is never chosen. ``block`` defaults to
    the power of two nearest above sqrt(V), which minimises the two matmuls (V / block)^2 + block^2.
    """
    rows, vocab = probs.shape
    block = block or 1 << max(math.ceil(math.log2(math.sqrt(vocab))), 0)
    pad = -vocab % block
    blocks = jnp.pad(probs, ((0, 0), (0, pad))).reshape(rows, -1, block)
    mass = blocks.sum(axis=-1)  # [B, nb]
    cdf = _inclusive_cumsum(mass)
    target = (1.0 - uniforms) * cdf[:, -1]  # in (0, total]
    b = _first_reaching(cdf, target, mass > 0)
    rest = target - jnp.take_along_axis(cdf - mass, b[:, None], axis=1)[:, 0]
    chosen = jnp.take_along_axis(blocks, b[:, None, None], axis=1)[:, 0]  # [B, block]
    i = _first_reaching(_inclusive_cumsum(chosen), rest, chosen > 0)
    return (b * block + i).astype(jnp.int32)


def _inclusive_cumsum(x: jax.Array) -> jax.Array:
    n = x.shape[-1]
    upper = jnp.triu(jnp.ones((n, n), x.dtype))
    return jnp.einsum("bi,ij->bj", x, upper, precision=jax.lax.Precision.HIGHEST)


def _first_reaching(cdf: jax.Array, target: jax.Array, positive: jax.Array) -> jax.Array:
    """First index with cdf >= target, clamped to the last positive entry (guards float round-off)."""
    n = cdf.shape[-1]
    index = jnp.sum(cdf < target[:, None], axis=-1)
    last_positive = n - 1 - jnp.argmax(positive[:, ::-1], axis=-1)
    return jnp.minimum(index, last_positive)
