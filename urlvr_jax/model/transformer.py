"""Decoder-only transformer (Llama-3 / SmolLM2, Qwen2, Qwen3) as pure functions over a params pytree.

Params tree (L layers stacked on the leading axis so the layers run under one ``lax.scan``)::

    embed      [V, D]            final_norm [D]           lm_head [D, V]   (absent when tied)
    layers/attn_norm [L, D]      layers/mlp_norm [L, D]
    layers/q   [L, D, H, Dh]     layers/k, v [L, D, Hkv, Dh]   layers/o [L, H, Dh, D]
    layers/q_bias [L, H, Dh]     layers/k_bias, v_bias [L, Hkv, Dh]    (attention_bias)
    layers/q_norm, k_norm [L, Dh]                                     (qk_norm, Qwen3)
    layers/gate, up [L, D, F]    layers/down [L, F, D]

The KV cache (:class:`KVCache`) is preallocated: ``k`` [L, B, Hkv, Dh, S], ``v`` [L, B, Hkv, S, Dh] (head-major,
CPU) or both [L, B, S, Hkv, Dh] (sequence-major, TPU/GPU: ``model.kv_layout``), a per-slot validity mask [B, S] and
one write index shared by the batch. Prompts are left-padded, so every row writes decode
step t into the same slot; padded slots are masked out of attention. Positions (for RoPE) are per row.
"""

from __future__ import annotations

import math

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from urlvr_jax.model.attention import attend
from urlvr_jax.model.attention_kernels import KeyMask, kernel_attention, no_cache_mask
from urlvr_jax.model.config import ModelConfig
from urlvr_jax.model.kv_cache import KVCache, init_cache, write  # noqa: F401  (init_cache: the cache's home here)

Params = dict


def param_shapes(cfg: ModelConfig) -> dict:
    """The params tree as shapes (no dtype); the single source of truth for init, import and sharding."""
    L, D, H, K, Dh, F, V = (cfg.num_layers, cfg.hidden_size, cfg.num_heads, cfg.num_kv_heads,
                            cfg.head_dim, cfg.intermediate_size, cfg.vocab_size)
    layers = {"attn_norm": (L, D), "q": (L, D, H, Dh), "k": (L, D, K, Dh), "v": (L, D, K, Dh),
              "o": (L, H, Dh, D), "mlp_norm": (L, D), "gate": (L, D, F), "up": (L, D, F), "down": (L, F, D)}
    if cfg.attention_bias:
        layers.update(q_bias=(L, H, Dh), k_bias=(L, K, Dh), v_bias=(L, K, Dh))
    if cfg.qk_norm:
        layers.update(q_norm=(L, Dh), k_norm=(L, Dh))
    shapes = {"embed": (V, D), "layers": layers, "final_norm": (D,)}
    if not cfg.tie_embeddings:
        shapes["lm_head"] = (D, V)
    return shapes


def abstract_params(cfg: ModelConfig) -> dict:
    dtype = cfg.weight_dtype
    return jax.tree.map(lambda s: jax.ShapeDtypeStruct(s, dtype), param_shapes(cfg),
                        is_leaf=lambda x: isinstance(x, tuple))


def init_params(cfg: ModelConfig, rng: jax.Array, scale: float = 0.02) -> Params:
    """Random parameters: N(0, scale²) matrices, unit norms, zero biases."""
    shapes = param_shapes(cfg)
    leaves, treedef = jax.tree.flatten(shapes, is_leaf=lambda x: isinstance(x, tuple))
    paths = [jax.tree_util.keystr(p) for p, _ in
             jax.tree_util.tree_flatten_with_path(shapes, is_leaf=lambda x: isinstance(x, tuple))[0]]
    keys = jax.random.split(rng, len(leaves))
    out = []
    for path, shape, key in zip(paths, leaves, keys):
        if "norm" in path:
            out.append(jnp.ones(shape, cfg.weight_dtype))
        elif "bias" in path:
            out.append(jnp.zeros(shape, cfg.weight_dtype))
        else:
            out.append((scale * jax.random.normal(key, shape, jnp.float32)).astype(cfg.weight_dtype))
    return jax.tree.unflatten(treedef, out)


def rope_inv_freq(cfg: ModelConfig) -> np.ndarray:
    """RoPE inverse frequencies [Dh/2], with Llama-3 scaling when configured (float32, as transformers)."""
    dim = cfg.head_dim
    inv_freq = (1.0 / (cfg.rope_theta ** (np.arange(0, dim, 2, dtype=np.int64).astype(np.float32) / dim)))
    inv_freq = inv_freq.astype(np.float32)
    scaling = cfg.rope_scaling_dict
    if not scaling:
        return inv_freq
    factor, low, high = scaling["factor"], scaling["low_freq_factor"], scaling["high_freq_factor"]
    old_ctx = scaling["original_max_position_embeddings"]
    wavelen = 2 * np.pi / inv_freq
    scaled = np.where(wavelen > old_ctx / low, inv_freq / factor, inv_freq)
    smooth = (old_ctx / wavelen - low) / (high - low)
    smoothed = (1 - smooth) * scaled / factor + smooth * scaled
    medium = (wavelen >= old_ctx / high) & (wavelen <= old_ctx / low)
    return np.where(medium, smoothed, scaled).astype(np.float32)


def rope_tables(positions: jax.Array, inv_freq: np.ndarray, dtype, num_positions: int | None = None
                ) -> tuple[jax.Array, jax.Array]:
    """(cos, sin) [B, S, 1, Dh] of positions [B, S], computed once per forward and shared by every layer.

    With ``num_positions`` (a static bound: every position is below it) the cos and sin of each position are
    computed once into a [num_positions, Dh] table and gathered. Computed per element instead, XLA fuses the cos
    and sin into each consumer: one evaluation per head element of q and k, in every layer, forward and backward
    (``test_rope_table_lookup_equals_per_element_and_is_computed_once`` counts them).
    """
    def cos_sin(pos):
        freqs = pos.astype(jnp.float32)[..., None] * jnp.asarray(inv_freq)  # [..., Dh/2]
        emb = jnp.concatenate([freqs, freqs], axis=-1)
        return jnp.cos(emb).astype(dtype), jnp.sin(emb).astype(dtype)

    if num_positions is None:
        return tuple(t[:, :, None, :] for t in cos_sin(positions))
    tables = cos_sin(jnp.arange(num_positions))
    return tuple(jnp.take(t, positions, axis=0, mode="clip")[:, :, None, :] for t in tables)


def apply_rope(x: jax.Array, cos: jax.Array, sin: jax.Array) -> jax.Array:
    """Rotates x [B, S, H, Dh] by the :func:`rope_tables` of its positions (transformers' rotate-half convention)."""
    half = x.shape[-1] // 2
    rotated = jnp.concatenate([-x[..., half:], x[..., :half]], axis=-1)
    return x * cos + rotated * sin


def rms_norm(x: jax.Array, weight: jax.Array, eps: float) -> jax.Array:
    xf = x.astype(jnp.float32)
    xf = xf * jax.lax.rsqrt(jnp.mean(xf * xf, axis=-1, keepdims=True) + eps)
    return weight.astype(x.dtype) * xf.astype(x.dtype)


def positions_from_mask(token_mask: jax.Array) -> jax.Array:
    """Per-row positions of a left-padded batch: 0 at the first real token (pads get 0)."""
    return jnp.maximum(jnp.cumsum(token_mask.astype(jnp.int32), axis=-1) - 1, 0)


def _attention_block(q, k, v, mask, cfg: ModelConfig):
    """q [B,S,H,Dh], k [B,Hkv,Dh,K], v [B,Hkv,K,Dh], mask [B,S,K] -> [B,S,H,Dh] (grouped-query attention)."""
    B, S, H, Dh = q.shape
    Hkv = cfg.num_kv_heads
    qh = q.reshape(B, S, Hkv, H // Hkv, Dh).transpose(0, 2, 3, 1, 4).reshape(B, Hkv, H * S // Hkv, Dh)
    out = attend(qh, k, v, mask).reshape(B, Hkv, H // Hkv, S, Dh).transpose(0, 3, 1, 2, 4)
    return out.reshape(B, S, H, Dh).astype(q.dtype)


def attention(q, k, v, mask, cfg: ModelConfig):
    """:func:`attend` of q [B,S,H,Dh] and head-major k, v -> [B,S,H,Dh], over query chunks of
    ``cfg.attention_chunk`` positions when that is set and smaller than S; a kernel's for a :class:`KeyMask`
    (see :mod:`urlvr_jax.model.attention_kernels`)."""
    if isinstance(mask, KeyMask):
        return kernel_attention(q, k, v, mask)
    S, chunk = q.shape[1], cfg.attention_chunk
    if not chunk or chunk >= S:
        return _attention_block(q, k, v, mask, cfg)
    pad = -S % chunk
    qp = jnp.pad(q, ((0, 0), (0, pad), (0, 0), (0, 0)))
    mp = jnp.pad(mask, ((0, 0), (0, pad), (0, 0)))
    n = (S + pad) // chunk
    split = lambda x: jnp.moveaxis(x.reshape(x.shape[0], n, chunk, *x.shape[2:]), 1, 0)
    block = jax.checkpoint(lambda args: _attention_block(args[0], k, v, args[1], cfg))
    out = jax.lax.map(block, (split(qp), split(mp)))
    return jnp.moveaxis(out, 0, 1).reshape(q.shape[0], S + pad, *q.shape[2:])[:, :S]


@flax.struct.dataclass(frozen=True)
class OutMajor:
    """A dense weight stored out-major: ``t`` [prod(out_shape), prod(in dims)], PyTorch's layout.

    :func:`dense` multiplies it as the left operand, ``(t @ x.T).T``. At a few rows (bandwidth-bound decoding)
    XLA:CPU runs that form faster than ``x @ w`` on the in-major weight: a SmolLM2 decode step at 8 rows took
    57 ms instead of 72 ms (LM head 6 ms instead of 12 ms), and no faster from 64 rows on.
    See :func:`out_major_params`.
    """

    t: jax.Array
    out_shape: tuple = flax.struct.field(pytree_node=False)


def dense(x: jax.Array, w: jax.Array | OutMajor, in_dims: int = 1) -> jax.Array:
    """``x [..., *w.shape[:in_dims]] @ w`` as one 2-D matmul over the flattened leading dims of ``x``.

    The same contraction as an einsum such as "bsd,dhk->bshk", but its weight gradient is then a plain 2-D dot
    with both contracting dims major, which XLA:CPU runs without transposing the activation gradients (the
    einsum's two contracting dims made it write them transposed, ~25% of a training step's MLP time).
    """
    if isinstance(w, OutMajor):
        k = w.t.shape[1]
        # the barrier keeps XLA from folding the transpose into the dot, which makes it x @ t.T (the slow form)
        y = jax.lax.optimization_barrier(jnp.matmul(w.t.astype(x.dtype), x.reshape(-1, k).T)).T
        return y.reshape(*x.shape[:x.ndim - in_dims], *w.out_shape)
    k = math.prod(w.shape[:in_dims])
    y = jnp.matmul(x.reshape(-1, k), w.astype(x.dtype).reshape(k, -1))
    return y.reshape(*x.shape[:x.ndim - in_dims], *w.shape[in_dims:])


def _project_qkv(x, w, rope, cfg: ModelConfig):
    q, k, v = (dense(x, w[name]) for name in ("q", "k", "v"))
    if cfg.attention_bias:
        q, k, v = (t + w[name].astype(x.dtype) for t, name in ((q, "q_bias"), (k, "k_bias"), (v, "v_bias")))
    if cfg.qk_norm:
        q = rms_norm(q, w["q_norm"], cfg.rms_norm_eps)
        k = rms_norm(k, w["k_norm"], cfg.rms_norm_eps)
    return apply_rope(q, *rope), apply_rope(k, *rope), v


def _mlp(x, w):
    return dense(jax.nn.silu(dense(x, w["gate"])) * dense(x, w["up"]), w["down"])


def attention_inputs(x, w, rope, cfg: ModelConfig):
    """A layer's queries [B, S, H, Dh] and head-major keys [B, Hkv, Dh, S] and values [B, Hkv, S, Dh] of its
    input x [B, S, D] (the pre-attention norm, projections, biases, q/k norms and RoPE)."""
    q, k, v = _project_qkv(rms_norm(x, w["attn_norm"], cfg.rms_norm_eps), w, rope, cfg)
    return q, k.transpose(0, 2, 3, 1), v.transpose(0, 2, 1, 3)


def layer_output(x, attn, w, cfg: ModelConfig):
    """The rest of a layer after attention: output projection and MLP, both residual."""
    x = x + dense(attn, w["o"], in_dims=2)
    return x + _mlp(rms_norm(x, w["mlp_norm"], cfg.rms_norm_eps), w)


def run_layers(layer, carry, layers, remat: bool = False):
    """``carry = layer(carry, w)`` for every layer: a ``lax.scan`` over stacked layer params, or an unrolled loop
    over a list of per-layer dicts (:func:`unstack_layers`). ``remat`` recomputes each layer in the backward."""
    if remat:
        layer = jax.checkpoint(layer, policy=jax.checkpoint_policies.nothing_saveable)
    if isinstance(layers, (list, tuple)):
        for w in layers:
            carry = layer(carry, w)
        return carry
    return jax.lax.scan(lambda c, w: (layer(c, w), None), carry, layers)[0]


def forward_hidden(params: Params, tokens: jax.Array, positions: jax.Array | None = None,
                   token_mask: jax.Array | None = None, *, cfg: ModelConfig, cache: KVCache | None = None,
                   remat: bool = False) -> tuple[jax.Array, KVCache | None]:
    """Final normed hidden states [B, S, D] (compute dtype) and the updated cache.

    Args:
      tokens: [B, S] int token ids (left-padded when rows have different lengths).
      positions: [B, S] RoPE positions; default ``positions_from_mask(token_mask)`` (offset by the
        number of real tokens already in the cache when ``cache`` is given).
      token_mask: [B, S] bool, True on real tokens; default all True.
      cache: a :class:`KVCache`; the S new keys/values are written at slots [index, index + S).
      remat: rematerialise each layer in the backward pass (saves activation memory in training).
    """
    B, S = tokens.shape
    if token_mask is None:
        token_mask = jnp.ones((B, S), bool)
    num_positions = None  # a bound on explicit positions is the caller's to know
    if positions is None:
        positions = positions_from_mask(token_mask)
        num_positions = S
        if cache is not None:
            positions = positions + jnp.sum(cache.key_mask, axis=-1, keepdims=True).astype(positions.dtype)
            num_positions = cache.length
    rope = rope_tables(positions, rope_inv_freq(cfg), cfg.compute_dtype, num_positions)
    x = params["embed"].astype(cfg.compute_dtype)[tokens]

    if cache is None:
        mask, key_mask = no_cache_mask(token_mask, S, cfg), None
    else:
        key_mask = jax.lax.dynamic_update_slice(cache.key_mask, token_mask, (0, cache.index))
        slots = jnp.arange(cache.length)
        visible = slots[None, :] <= cache.index + jnp.arange(S)[:, None]  # [S, K]
        mask = visible[None] & key_mask[:, None, :]

    def layer(carry, w):
        x, ks, vs, i = carry
        q, k, v = attention_inputs(x, w, rope, cfg)
        if cache is None:
            keys, values = k, v
        else:
            (k, v), (k_axis, v_axis) = cache.stored(k, v), cache.position_axes
            ks, vs = write(ks, k, cache.index, k_axis, i), write(vs, v, cache.index, v_axis, i)
            keys, values = cache.attended(ks[i], vs[i], x.dtype)
        return layer_output(x, attention(q, keys, values, mask, cfg), w, cfg), ks, vs, i + 1

    ks, vs = (cache.k, cache.v) if cache is not None else (None, None)
    unrolled = isinstance(params["layers"], (list, tuple))
    if isinstance(ks, tuple) and not unrolled:
        raise ValueError("a per-layer KVCache needs unstacked params (see unstack_layers)")
    first = 0 if unrolled else jnp.zeros((), jnp.int32)  # the layer index: a Python int when unrolled
    x, ks, vs, _ = run_layers(layer, (x, ks, vs, first), params["layers"], remat)
    x = rms_norm(x, params["final_norm"], cfg.rms_norm_eps)
    if cache is not None:
        cache = cache.replace(k=ks, v=vs, key_mask=key_mask, index=cache.index + S)
    return x, cache


def unstack_layers(params: Params) -> Params:
    """The same params with ``layers`` as a list of per-layer dicts: forward then unrolls the layers, which
    saves the per-step copy of each layer's weights out of the stacked arrays in bandwidth-bound decoding
    (at the price of a compile time that grows with depth)."""
    layers = params["layers"]
    if isinstance(layers, (list, tuple)):
        return params
    num = jax.tree.leaves(layers)[0].shape[0]
    return {**params, "layers": [jax.tree.map(lambda x: x[i], layers) for i in range(num)]}


_IN_DIMS = {"q": 1, "k": 1, "v": 1, "o": 2, "gate": 1, "up": 1, "down": 1}


def out_major_params(params: Params) -> Params:
    """Unstacked params (:func:`unstack_layers`) whose matmul weights and LM head are :class:`OutMajor`, for
    decoding a few rows. Costs one transposed copy of the weights; the tied head is the embedding as stored."""
    params = unstack_layers(params)

    def out_major(w, in_dims):
        if isinstance(w, OutMajor):
            return w
        k = math.prod(w.shape[:in_dims])
        return OutMajor(t=w.reshape(k, -1).T, out_shape=w.shape[in_dims:])

    layers = [{name: out_major(v, _IN_DIMS[name]) if name in _IN_DIMS else v for name, v in w.items()}
              for w in params["layers"]]
    head = (out_major(params["lm_head"], 1) if "lm_head" in params
            else OutMajor(t=params["embed"], out_shape=params["embed"].shape[:1]))
    return {**params, "layers": layers, "lm_head": head}


def lm_head_weight(params: Params) -> jax.Array:
    """[D, V] output projection (the transposed embedding when tied)."""
    return params["lm_head"] if "lm_head" in params else params["embed"].T


def logits_from_hidden(params: Params, hidden: jax.Array) -> jax.Array:
    """The LM head, always in float32."""
    return dense(hidden.astype(jnp.float32), lm_head_weight(params))


def forward(params: Params, tokens: jax.Array, positions: jax.Array | None = None,
            token_mask: jax.Array | None = None, *, cfg: ModelConfig, cache: KVCache | None = None,
            remat: bool = False) -> tuple[jax.Array, KVCache | None]:
    """Float32 logits [B, S, V] and the updated cache; arguments as :func:`forward_hidden`."""
    hidden, cache = forward_hidden(params, tokens, positions, token_mask, cfg=cfg, cache=cache, remat=remat)
    return logits_from_hidden(params, hidden), cache
