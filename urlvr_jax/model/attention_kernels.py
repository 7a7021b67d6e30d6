"""Attention of the forwards without a KV cache (the train step's, the log-prob pass's) on accelerators.

``ModelConfig.attention`` (config ``model.attention``) picks the implementation:

* ``reference``: :func:`urlvr_jax.model.attention.attend` over a dense [B, S, K] mask (query chunks with
  ``attention_chunk``): the path tuned for XLA:CPU.
* ``splash``: Pallas splash attention (``jax.experimental.pallas.ops.tpu.splash_attention``), TPU's flash kernel:
  no S x K scores in memory. Off TPU it runs in Pallas interpret mode (for tests). Its bf16 kernels trace their
  dots at ``DEFAULT`` precision whatever ``train.matmul_precision`` says (Mosaic takes ``HIGHEST`` for float32
  operands only); float32 kernels and every matmul around them keep the process's precision.
* ``cudnn``: ``jax.nn.dot_product_attention`` with cuDNN's fused kernel on a GPU for bf16/f16 inputs, its XLA
  implementation otherwise.
* ``auto``: splash on TPU, cudnn on GPU, reference elsewhere, by the platform of the mesh in the trace context
  (compile-only TPU devices run on a CPU backend) or else of the default backend.

The kernels see the mask as :class:`KeyMask`: the S queries are the last S of the K keys (a causal mask with
offset K - S: the shared-prompt forward's completions see their group's prompt, then their own keys) and a query
sees the keys of its segment, 1 for real tokens and 0 for pads. A real token thus sees the real tokens at or
before it, as with the reference's mask; a pad sees the pads at or before it (itself included, so no row of the
softmax is empty), where the reference's pad rows see real tokens. Pad outputs reach nothing real (real queries
never see a pad key), so hidden states at real positions and every gradient of a loss over real tokens are the
reference's.

Decoding (forwards with a KV cache) keeps :func:`attend`.
"""

from __future__ import annotations

import functools
import importlib.util

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental.pallas.ops.tpu import splash_attention as splash
from jax.sharding import PartitionSpec as P

from urlvr_jax import sharding as shd
from urlvr_jax.model.config import ModelConfig

LANES = 128  # splash blocks are multiples of the TPU lane width; sequences are padded to it
BLOCKS = (512, 256, 128)  # the largest that divides a padded length is the kernel's block
GPU_PLATFORMS = ("gpu", "cuda", "rocm")


@flax.struct.dataclass(frozen=True)
class KeyMask:
    """The mask of a forward without cache as a kernel takes it: ``key_mask`` [B, K], True on real tokens,
    whose last S keys are the S queries' own; ``kernel`` is ``splash`` or ``cudnn``."""

    key_mask: jax.Array
    kernel: str = flax.struct.field(pytree_node=False)


def context_platform() -> str:
    """The platform of the mesh in the trace context (``jax.set_mesh``, :func:`traced_under`), else the default
    backend's."""
    mesh = jax.sharding.get_abstract_mesh()
    return jax.default_backend() if mesh.empty else mesh.abstract_device.platform


def resolve(attention: str) -> str:
    """``reference``, ``splash`` or ``cudnn`` for ``model.attention`` (``auto`` by :func:`context_platform`)."""
    if attention != "auto":
        return attention
    platform = context_platform()
    return "splash" if platform == "tpu" else "cudnn" if platform in GPU_PLATFORMS else "reference"


def _causal(queries: int, keys: int) -> np.ndarray:
    """[S, K] bool: query s, the key at K - S + s, sees the keys at or before it."""
    return np.arange(keys)[None, :] <= np.arange(queries)[:, None] + (keys - queries)


def dense_mask(key_mask: jax.Array, queries: int) -> jax.Array:
    """[B, S, K] bool: query s (the key at K - S + s) sees the real keys at or before it."""
    return _causal(queries, key_mask.shape[-1])[None] & key_mask[:, None, :]


def no_cache_mask(key_mask: jax.Array, queries: int, cfg: ModelConfig) -> jax.Array | KeyMask:
    """The mask ``transformer.attention`` takes for a forward without cache whose S = ``queries`` queries are
    the last keys of ``key_mask`` [B, K]: the dense [B, S, K] mask for the reference, a :class:`KeyMask` for a
    kernel. Build it once per forward (outside the layers)."""
    kernel = resolve(cfg.attention)
    return dense_mask(key_mask, queries) if kernel == "reference" else KeyMask(key_mask, kernel)


def kernel_attention(q: jax.Array, k: jax.Array, v: jax.Array, mask: KeyMask) -> jax.Array:
    """Grouped-query attention of q [B, S, H, Dh] over head-major k [B, Hkv, Dh, K], v [B, Hkv, K, Dh] with
    ``mask.kernel`` -> [B, S, H, Dh] in q's dtype."""
    segments = mask.key_mask.astype(jnp.int32)
    if mask.kernel not in ("splash", "cudnn"):
        raise ValueError(f"KeyMask.kernel={mask.kernel!r} is not splash or cudnn")
    attend_shard = (_dot_product if mask.kernel == "cudnn" else
                    functools.partial(_splash, interpret=context_platform() != "tpu"))
    mesh = jax.sharding.get_abstract_mesh()
    if mesh.empty or mesh.size == 1:
        return attend_shard(q, k, v, segments)
    # a pallas_call is not partitioned by XLA, and cuDNN's partitioner wants q, k and v sharded alike: run either
    # per shard, batch over ('data', 'fsdp'), kv-heads over 'tensor' (axes that do not divide a dimension
    # replicate it, as shd.fit_spec decides)
    B, Hkv = k.shape[:2]
    batch = shd.fit_spec(P(tuple(a for a in shd.BATCH if a in mesh.axis_names)), (B,), mesh)[0]
    heads = shd.fit_spec(P("tensor" if "tensor" in mesh.axis_names else None), (Hkv,), mesh)[0]
    q_spec, kv_spec = P(batch, None, heads, None), P(batch, heads, None, None)
    run = jax.shard_map(attend_shard, mesh=mesh, check_vma=False,
                        in_specs=(q_spec, kv_spec, kv_spec, P(batch, None)), out_specs=q_spec)
    return run(q, k, v, segments)


def _visible(segments: jax.Array, queries: int) -> jax.Array:
    """[B, S, K] bool of segment ids [B, K]: the causal mask with offset K - S within each segment."""
    same = segments[:, -queries:, None] == segments[:, None, :]
    return _causal(queries, segments.shape[-1])[None] & same


def _dot_product(q, k, v, segments):
    """``jax.nn.dot_product_attention`` in its [B, T, N, H] layout: cuDNN on a GPU for 16-bit inputs."""
    cudnn = context_platform() in GPU_PLATFORMS and q.dtype in (jnp.bfloat16, jnp.float16) and cudnn_available()
    out = jax.nn.dot_product_attention(q, k.transpose(0, 3, 1, 2).astype(q.dtype), v.transpose(0, 2, 1, 3).astype(
        q.dtype), mask=_visible(segments, q.shape[1])[:, None], implementation="cudnn" if cudnn else "xla")
    return out.astype(q.dtype)


def cudnn_available() -> bool:
    """cuDNN can be linked: a GPU backend is up (jax's CUDA plugin loads cuDNN to start), or the pip package that
    ships it is installed (what compiling for compile-only GPU devices needs; without it the XLA implementation)."""
    if jax.default_backend() in GPU_PLATFORMS:
        return True
    try:
        return importlib.util.find_spec("nvidia.cudnn") is not None
    except ModuleNotFoundError:  # no nvidia namespace package at all
        return False


def _round_up(n: int) -> int:
    return -(-n // LANES) * LANES


def _block(length: int) -> int:
    return next(b for b in BLOCKS if length % b == 0)


def _splash(q, k, v, segments, interpret: bool):
    """Splash attention of one shard; the same arguments as :func:`kernel_attention`, ``segments`` [B, K] int.

    The queries are padded at the end to a multiple of the block, the keys before their first (the prompt's)
    and after their last, with pad segments, so that the offset of the causal mask still lines every query up
    with its own key; the output is sliced back.
    """
    B, S, H, Dh = q.shape
    offset = k.shape[-1] - S
    queries, left = _round_up(S), _round_up(offset) - offset
    pad_keys = lambda x, axis: jnp.pad(x, [(0, 0)] * axis + [(left, queries - S)] + [(0, 0)] * (x.ndim - axis - 1))
    segments = pad_keys(segments, 1)
    keys = segments.shape[-1]
    scaled = (q.astype(jnp.float32) / np.sqrt(Dh)).astype(q.dtype)
    qh = jnp.pad(scaled, ((0, 0), (0, queries - S), (0, 0), (0, 0))).transpose(0, 2, 1, 3)  # [B, H, S', Dh]
    kh = pad_keys(k.transpose(0, 1, 3, 2), 2).astype(q.dtype)  # [B, Hkv, K', Dh]
    vh = pad_keys(v, 2).astype(q.dtype)
    bq, bkv = _block(queries), _block(keys)
    sizes = splash.BlockSizes(block_q=bq, block_kv=bkv, block_kv_compute=bkv, block_q_dkv=bq, block_kv_dkv=bkv,
                              block_kv_dkv_compute=bkv, block_q_dq=bq, block_kv_dq=bkv)
    causal = splash.CausalMask((queries, keys), offset=keys - queries)
    kernel = splash.make_splash_mha(splash.MultiHeadMask([causal] * H), block_sizes=sizes, head_shards=1,
                                    q_seq_shards=1, interpret=interpret)
    ids = splash.SegmentIds(q=segments[:, -queries:], kv=segments)
    run = _batched if q.dtype == jnp.float32 else _at_default_precision  # Mosaic takes HIGHEST for f32 only
    out = run(kernel, qh, kh, vh, ids)  # [B, H, S', Dh]; GQA: query head h reads kv-head h // (H / Hkv)
    return out[:, :, :S].transpose(0, 2, 1, 3).astype(q.dtype)


def _batched(kernel, *args):
    """A splash kernel over a leading batch axis of its arguments."""
    return jax.vmap(kernel)(*args)


@jax.custom_vjp
def _at_default_precision(kernel, *args):
    """:func:`_batched` with the dots of splash's forward and backward kernels traced at ``DEFAULT`` precision,
    whatever ``jax_default_matmul_precision`` the process runs under; the matmuls around it keep that.

    A dot takes its precision from that setting when it is traced, and Mosaic refuses ``HIGHEST`` (an fp32
    contraction, ``train.matmul_precision``'s default) for bf16 operands ("Bad lhs type"), whose products
    ``DEFAULT`` makes exactly (the forward's probabilities x values, f32 in the kernel, take one bf16 pass, as
    splash does by default). The backward kernels are traced when the gradient is transposed, outside any
    context around the forward's call: this VJP enters the context in its backward rule too. ``kernel`` (a
    pytree whose mask infos are arrays made while tracing) is an argument, never a closure of a rule, so no rule
    reaches into a finished trace.
    """
    with jax.default_matmul_precision("default"):
        return _batched(kernel, *args)


def _at_default_precision_fwd(kernel, *args):
    with jax.default_matmul_precision("default"):
        return jax.vjp(_batched, kernel, *args)  # the residuals: the pullback's leaves


def _at_default_precision_bwd(pullback, cotangent):
    with jax.default_matmul_precision("default"):
        return pullback(cotangent)


_at_default_precision.defvjp(_at_default_precision_fwd, _at_default_precision_bwd)


def traced_under(fn, mesh: jax.sharding.Mesh | None):
    """``fn`` traced with ``mesh`` as the context's abstract mesh, so the kernels find it (``jax.set_mesh``
    cannot be entered inside ``jax.jit``); ``fn`` itself without a mesh. Jit the result."""
    if mesh is None:
        return fn

    @functools.wraps(fn)
    def under_mesh(*args, **kwargs):
        with jax.sharding.use_abstract_mesh(mesh.abstract_mesh):
            return fn(*args, **kwargs)

    return under_mesh
