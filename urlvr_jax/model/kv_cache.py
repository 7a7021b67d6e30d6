"""The KV cache of :mod:`urlvr_jax.model.transformer`: its two layouts (``model.kv_layout``) and its writes.

Head-major (CPU): ``k`` [L, B, Hkv, Dh, S], ``v`` [L, B, Hkv, S, Dh]. Sequence-major (TPU/GPU): ``k`` and ``v``
[L, B, S, Hkv, Dh]. Attention takes head-major views either way (:meth:`KVCache.attended`). The TPU compiler
copies a head-major cache into the decode's layer-loop layout and back every decode step, a sequence-major one in
no step (tests/sampling/test_kv_layout.py, docs/tpu_decode.md).
"""

from __future__ import annotations

import flax.struct
import jax
import jax.numpy as jnp

from urlvr_jax.model.attention_kernels import context_platform
from urlvr_jax.model.config import ModelConfig

HEAD_MAJOR, SEQUENCE_MAJOR = "head_major", "sequence_major"


def resolve_kv_layout(layout: str, platform: str | None = None) -> str:
    """``head_major`` or ``sequence_major`` for ``model.kv_layout`` (``auto``: head-major on CPU, else
    sequence-major, by ``platform`` or else :func:`~urlvr_jax.model.attention_kernels.context_platform`)."""
    if layout != "auto":
        return layout
    return HEAD_MAJOR if (platform or context_platform()) == "cpu" else SEQUENCE_MAJOR


def kv_heads_axis(layout: str) -> int:
    """The kv-heads axis of a cache's k and v, counted from the end."""
    return -3 if layout == HEAD_MAJOR else -2


@flax.struct.dataclass(frozen=True)
class KVCache:
    # Head-major (CPU): attention reads a layer's cache in place, batch dims (b, h) leading (a sequence-major
    # [L, B, S, Hkv, Dh] cache cost two full-cache transposes per layer and decode step on CPU). Keys are stored
    # transposed, slots minor, so both attention dots are plain [M, K] x [K, N] matmuls per (b, h): XLA:CPU ran
    # the decode-step score dot ~2x slower with slot-major keys (it packs a transposed operand per call).
    # Sequence-major (TPU/GPU): the TPU compiler lays a head-major cache out sequence-major in the decode's layer
    # scan and copied the whole cache into that layout and back every step (docs/tpu_decode.md).
    k: jax.Array  # head-major [L, B, Hkv, Dh, S]; sequence-major [L, B, S, Hkv, Dh]
    v: jax.Array  # head-major [L, B, Hkv, S, Dh]; sequence-major [L, B, S, Hkv, Dh]
    key_mask: jax.Array  # [B, S] bool: slot holds a real token
    index: jax.Array  # [] int32: next slot to write
    layout: str = flax.struct.field(pytree_node=False, default=HEAD_MAJOR)

    @property
    def length(self) -> int:
        return self.key_mask.shape[-1]

    @property
    def position_axes(self) -> tuple[int, int]:
        """The position axis of k and of v, counted from the end."""
        return (-1, -2) if self.layout == HEAD_MAJOR else (-3, -3)

    @property
    def heads_axis(self) -> int:
        return kv_heads_axis(self.layout)

    def stored(self, k: jax.Array, v: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Head-major k [B, Hkv, Dh, S] and v [B, Hkv, S, Dh] in this cache's layout."""
        return (k, v) if self.layout == HEAD_MAJOR else (k.transpose(0, 3, 1, 2), v.transpose(0, 2, 1, 3))

    def attended(self, k: jax.Array, v: jax.Array, dtype) -> tuple[jax.Array, jax.Array]:
        """One layer's k and v [B, ...] in this cache's layout as head-major views in ``dtype``, as
        :func:`attention` takes them."""
        if self.layout != HEAD_MAJOR:
            k, v = k.transpose(0, 2, 3, 1), v.transpose(0, 2, 1, 3)
        return k.astype(dtype), v.astype(dtype)

    def per_layer(self) -> "KVCache":
        """k and v as tuples of per-layer arrays ([B, ...]): with unstacked params, forward then writes and reads
        each layer's cache in place (a stacked cache costs a copy of the layer's slice per read)."""
        return self.replace(k=tuple(self.k), v=tuple(self.v))

    def stacked(self) -> "KVCache":
        """The inverse of :meth:`per_layer`."""
        return self.replace(k=jnp.stack(self.k), v=jnp.stack(self.v))


def init_cache(cfg: ModelConfig, batch: int, length: int, dtype=None) -> KVCache:
    """An empty cache in ``cfg.kv_layout`` (``auto`` resolved by the trace context's platform)."""
    layout = resolve_kv_layout(cfg.kv_layout)
    L, K, Dh = cfg.num_layers, cfg.num_kv_heads, cfg.head_dim
    if layout == HEAD_MAJOR:
        key_shape, shape = (L, batch, K, Dh, length), (L, batch, K, length, Dh)
    else:
        key_shape = shape = (L, batch, length, K, Dh)
    dtype = dtype or cfg.compute_dtype
    return KVCache(k=jnp.zeros(key_shape, dtype), v=jnp.zeros(shape, dtype),
                   key_mask=jnp.zeros((batch, length), bool), index=jnp.zeros((), jnp.int32), layout=layout)


def write(buf, new, index, axis: int, layer):
    """``buf`` with ``new`` written from ``index`` along ``axis`` (counted from the end) in ``layer``: of a
    per-layer tuple (``layer`` a Python int) or of a stacked [L, ...] array."""
    if isinstance(buf, tuple):
        return buf[:layer] + (write(buf[layer], new, index, axis, None),) + buf[layer + 1:]
    start = [index if a == buf.ndim + axis else 0 for a in range(buf.ndim)]
    if layer is not None:
        new, start[0] = new[None], layer
    return jax.lax.dynamic_update_slice(buf, new.astype(buf.dtype), start)
