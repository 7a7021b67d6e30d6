"""What one decode step of the continuous sampler reads and computes on a TPU, by the TPU compiler (no TPU needed).

    python benchmarks/tpu_decode.py   # --topology v5e:8x8 --mesh fsdp:16,tensor:4 --slots 64 --length 8192

Qwen3-1.7B-Base shapes (bf16 compute, float32 master weights, the plan preset) and the paper's cache length
(prompt 1024 + 7168 new tokens = 8192 positions). Three parts, all from ``compiled.cost_analysis()`` (per chip)
and ``memory_analysis()``:

1. the whole step, :func:`urlvr_jax.sampling.continuous.decode_step`, on the config's mesh with each
   ``model.kv_layout``: head-major (keys [L, S, Hkv, Dh, K], values [L, S, Hkv, K, Dh]) and sequence-major
   (both [L, S, K, Hkv, Dh]), layers scanned: XLA counts the scan body once, so its bytes and FLOPs are
   multiplied by the layers (``x L``) next to the rest;
2. one layer's attention and cache write on one chip's share (S / batch shards slots, Hkv / tensor heads) for the
   head-major cache and a sequence-major one ([S, K, Hkv, Dh]), each with its cache donated (written in place);
3. the same head-major layer reading only the live positions (a cache of ``--live`` positions instead of
   ``--length``): what a paged or ragged kernel reading only live blocks would read at that fill. The Pallas
   ragged paged attention kernel is a custom call, which cost analysis counts as nearly free, so its figure here
   is this one.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("ALLOW_MULTIPLE_LIBTPU_LOAD", "1")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from jax.sharding import NamedSharding, PartitionSpec as P  # noqa: E402

from urlvr_jax import sharding as shd  # noqa: E402
from urlvr_jax.model.attention import attend  # noqa: E402
from urlvr_jax.model.config import ModelConfig  # noqa: E402
from urlvr_jax.model.transformer import abstract_params, init_cache  # noqa: E402
from urlvr_jax.plan.build import PRESETS, with_shardings  # noqa: E402
from urlvr_jax.plan.topology import compile_devices  # noqa: E402
from urlvr_jax.sampling.continuous import _slot_shardings, decode_step  # noqa: E402

MB = 1e6


def figures(compiled) -> tuple[float, float, float]:
    """(MB accessed, MFLOP, temp MB) per chip of a compiled program."""
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return cost["bytes accessed"] / MB, cost["flops"] / 1e6, compiled.memory_analysis().temp_size_in_bytes / MB


def whole_step(cfg, mesh, slots: int, length: int):
    """Figures of one decode step of ``slots`` slots over a cache of ``length`` positions on ``mesh``."""
    params = abstract_params(cfg)
    params = {**params, "layers": jax.tree.map(lambda w: jax.ShapeDtypeStruct(w.shape, cfg.compute_dtype),
                                               params["layers"])}  # as the sampler casts them
    params = with_shardings(params, shd.param_shardings(params, mesh))
    cache = jax.eval_shape(lambda: init_cache(cfg, slots, length))
    cache = with_shardings(cache, _slot_shardings(cache, mesh, cache.layout))
    vec = lambda dtype: jax.ShapeDtypeStruct((slots,), dtype, sharding=shd.batch_sharding(mesh, (slots,)))
    step = jax.jit(lambda p, tok, pos, at, c: decode_step(p, tok, pos, at, c, cfg=cfg), donate_argnums=4)
    return figures(step.lower(params, vec(jnp.int32), vec(jnp.int32), vec(jnp.int32), cache).compile())


def layer_attention(cfg, device, slots: int, heads: int, kv_heads: int, length: int, layout: str, write: bool):
    """Figures of one layer's attention of one query per slot on one chip, after writing the new key and value
    into the cache when ``write``."""
    dh, group = cfg.head_dim, heads // kv_heads
    one = jax.sharding.SingleDeviceSharding(device)
    sds = lambda shape, dtype=cfg.compute_dtype: jax.ShapeDtypeStruct(shape, dtype, sharding=one)
    q, new = sds((slots, kv_heads, group, dh)), sds((slots, kv_heads, dh))
    at, mask = sds((slots,), jnp.int32), sds((slots, length), bool)
    slot = jnp.arange(slots)
    if layout == "head-major":  # the sampler's: k [S, Hkv, Dh, K], v [S, Hkv, K, Dh]
        def attn(q, kn, vn, at, mask, k, v):
            if write:
                k = k.at[slot, :, :, at].set(kn, unique_indices=True)
                v = v.at[slot, :, at].set(vn, unique_indices=True)
            return (attend(q, k, v, mask[:, None]), k, v) if write else attend(q, k, v, mask[:, None])
        caches = sds((slots, kv_heads, dh, length)), sds((slots, kv_heads, length, dh))
    else:  # sequence-major: k, v [S, K, Hkv, Dh]
        def attn(q, kn, vn, at, mask, k, v):
            if write:
                k = k.at[slot, at].set(kn, unique_indices=True)
                v = v.at[slot, at].set(vn, unique_indices=True)
            scores = jnp.einsum("shgd,skhd->shgk", q, k, preferred_element_type=jnp.float32) / dh ** 0.5
            probs = jax.nn.softmax(jnp.where(mask[:, None, None], scores, -1e30), axis=-1).astype(v.dtype)
            out = jnp.einsum("shgk,skhd->shgd", probs, v, preferred_element_type=jnp.float32)
            return (out, k, v) if write else out
        caches = (sds((slots, length, kv_heads, dh)),) * 2
    jitted = jax.jit(attn, donate_argnums=(5, 6) if write else ())
    return figures(jitted.lower(q, new, new, at, mask, *caches).compile())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--topology", default="v5e:8x8")
    parser.add_argument("--mesh", default="fsdp:16,tensor:4")
    parser.add_argument("--slots", type=int, default=64, help="decode slots over the whole mesh")
    parser.add_argument("--length", type=int, default=8192, help="cache positions: prompt bucket + max new tokens")
    parser.add_argument("--live", type=int, nargs="*", default=[2048, 4096], help="live positions for part 3")
    parser.add_argument("--layers", type=int, default=28)
    args = parser.parse_args()
    devices, chip = compile_devices(args.topology)
    mesh = shd.make_mesh(args.mesh, devices=devices)
    hf = dict(PRESETS["Qwen/Qwen3-1.7B-Base"], num_hidden_layers=args.layers)
    cfg = ModelConfig.from_hf(hf, dtype="bfloat16", param_dtype="float32")
    shards, tensor = mesh.shape["data"] * mesh.shape["fsdp"], mesh.shape["tensor"]
    local = dict(slots=args.slots // shards, heads=cfg.num_heads // tensor, kv_heads=cfg.num_kv_heads // tensor)
    cache_mb = 2 * args.layers * local["slots"] * local["kv_heads"] * cfg.head_dim * args.length * 2 / MB
    print(f"{chip.name} ({args.topology}, mesh {args.mesh}, {chip.hbm_bandwidth / 1e9:.0f} GB/s HBM); Qwen3-1.7B "
          f"L={args.layers}, {args.slots} slots x {args.length} positions: per chip {local['slots']} slots, "
          f"{local['kv_heads']} kv heads, KV cache {cache_mb:,.0f} MB")
    for kv_layout in ("head_major", "sequence_major"):  # model.kv_layout
        mb, mflop, temp = whole_step(dataclasses.replace(cfg, kv_layout=kv_layout), mesh, args.slots, args.length)
        print(f"1. whole decode step, {kv_layout} cache (scan body counted once): {mb:,.0f} MB accessed, "
              f"{mflop:,.0f} MFLOP, temp {temp:,.0f} MB")
    device = devices[0]
    rows = []
    for layout, length, write in [(layout, args.length, write) for layout in ("head-major", "sequence-major")
                                  for write in (False, True)] + [("head-major", n, False) for n in args.live]:
        mb, mflop, temp = layer_attention(cfg, device, **local, length=length, layout=layout, write=write)
        rows.append((layout + (" write+attend" if write else " attend"), length, mb, mflop, temp))
    print(f"2./3. one layer's attention (and cache write) per chip, x {args.layers} layers, and its time at "
          f"{chip.hbm_bandwidth / 1e9:.0f} GB/s:")
    for name, length, mb, mflop, temp in rows:
        total = mb * args.layers
        print(f"  {name:28s} {length:6d} positions: {mb:8.1f} MB/layer ({total:8,.0f} MB/step, "
              f"{total * MB / chip.hbm_bandwidth * 1e3:6.2f} ms), {mflop:7.1f} MFLOP/layer, temp {temp:6.1f} MB")


if __name__ == "__main__":
    main()
