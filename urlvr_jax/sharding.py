"""Device mesh and partition rules over the axes ('data', 'fsdp', 'tensor').

* Params: FSDP shards the model dimension D, tensor parallelism shards heads / the MLP width / the vocabulary.
* Batches (tokens, rollouts, KV cache): the batch axis over ('data', 'fsdp'); KV heads over 'tensor'.
An axis that does not divide a dimension is dropped for that tensor (it is replicated along that axis),
so any model fits any mesh; :func:`describe` reports what was dropped.
"""

from __future__ import annotations

import math
import re

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

AXES = ("data", "fsdp", "tensor")
BATCH = ("data", "fsdp")

# Ordered (regex on the param path, spec); the first match wins.
PARAM_RULES: tuple[tuple[str, P], ...] = (
    (r"embed$", P("tensor", "fsdp")),
    (r"lm_head$", P("fsdp", "tensor")),
    (r"layers/(q|k|v)$", P(None, "fsdp", "tensor", None)),
    (r"layers/o$", P(None, "tensor", None, "fsdp")),
    (r"layers/(q|k|v)_bias$", P(None, "tensor", None)),
    (r"layers/(gate|up)$", P(None, "fsdp", "tensor")),
    (r"layers/down$", P(None, "tensor", "fsdp")),
    (r"norm$", P()),
)


def make_mesh(spec: str | dict | None = None, devices=None) -> Mesh:
    """A mesh from ``"data:2,fsdp:2,tensor:2"`` or ``"2,2,2"`` (one entry may be -1: all remaining devices).

    ``None`` or ``""`` puts every device on 'fsdp'.
    """
    devices = list(devices if devices is not None else jax.devices())
    sizes = _parse_mesh_spec(spec)
    known = math.prod(s for s in sizes.values() if s != -1)
    if list(sizes.values()).count(-1) > 1:
        raise ValueError(f"mesh spec {spec!r}: at most one axis may be -1")
    for name, size in sizes.items():
        if size == -1:
            sizes[name] = len(devices) // known
    total = math.prod(sizes.values())
    if total != len(devices):
        raise ValueError(f"mesh spec {spec!r} asks for {total} devices ({sizes}) but {len(devices)} are available")
    grid = np.asarray(devices).reshape(tuple(sizes[a] for a in AXES))
    return Mesh(grid, AXES)


def _parse_mesh_spec(spec) -> dict[str, int]:
    if spec is None or spec == "":
        return {"data": 1, "fsdp": -1, "tensor": 1}
    if isinstance(spec, dict):
        unknown = set(spec) - set(AXES)
        if unknown:
            raise ValueError(f"mesh spec: unknown axes {sorted(unknown)}; axes are {AXES}")
        return {a: int(spec.get(a, 1)) for a in AXES}
    parts = [p.strip() for p in str(spec).split(",") if p.strip()]
    if all(":" in p for p in parts):
        return _parse_mesh_spec({k.strip(): int(v) for k, v in (p.split(":") for p in parts)})
    if len(parts) != len(AXES):
        raise ValueError(f"mesh spec {spec!r}: give {len(AXES)} sizes for {AXES} or name them like 'data:2,fsdp:4'")
    return dict(zip(AXES, (int(p) for p in parts)))


def fit_spec(spec: P, shape: tuple[int, ...], mesh: Mesh) -> P:
    """Drops mesh axes that do not divide the dimension they shard."""
    entries = list(spec) + [None] * (len(shape) - len(spec))
    fitted = []
    for dim, entry in zip(shape, entries):
        names = () if entry is None else (entry if isinstance(entry, tuple) else (entry,))
        kept, size = [], 1
        for name in names:
            if dim % (size * mesh.shape[name]) == 0:
                kept.append(name)
                size *= mesh.shape[name]
        fitted.append(None if not kept else (kept[0] if len(kept) == 1 else tuple(kept)))
    return P(*fitted)


def path_str(path) -> str:
    return "/".join(str(getattr(k, "key", getattr(k, "name", k))) for k in path)


def param_specs(params, rules=PARAM_RULES) -> dict:
    """PartitionSpecs for a params tree (arrays or ShapeDtypeStructs), unfitted."""
    def spec(path, _):
        name = path_str(path)
        for pattern, s in rules:
            if re.search(pattern, name):
                return s
        return P()
    return jax.tree_util.tree_map_with_path(spec, params)


def param_shardings(params, mesh: Mesh, rules=PARAM_RULES) -> dict:
    """NamedShardings for a params tree, fitted to the mesh."""
    specs = param_specs(params, rules)
    return jax.tree.map(lambda x, s: NamedSharding(mesh, fit_spec(s, x.shape, mesh)), params, specs)


def batch_sharding(mesh: Mesh, shape: tuple[int, ...], batch_axis: int = 0) -> NamedSharding:
    """Shards ``batch_axis`` over ('data', 'fsdp'), replicating the rest."""
    spec = [None] * len(shape)
    spec[batch_axis] = BATCH
    return NamedSharding(mesh, fit_spec(P(*spec), shape, mesh))


def tree_batch_shardings(tree, mesh: Mesh, batch_axis: int = 0):
    """Batch shardings for every array of a pytree (scalars replicated)."""
    return jax.tree.map(
        lambda x: batch_sharding(mesh, x.shape, batch_axis) if x.ndim else NamedSharding(mesh, P()), tree)


def cache_shardings(cache, mesh: Mesh):
    """KV cache: batch over ('data','fsdp'), kv-heads (``cache.heads_axis``) over 'tensor'; mask by batch; index
    replicated."""
    spec = [None, BATCH, None, None, None]
    spec[cache.heads_axis] = "tensor"
    kv = NamedSharding(mesh, fit_spec(P(*spec), cache.k.shape, mesh))
    return cache.replace(k=kv, v=kv, key_mask=batch_sharding(mesh, cache.key_mask.shape),
                         index=NamedSharding(mesh, P()))


def describe(params, mesh: Mesh, rules=PARAM_RULES) -> list[str]:
    """One line per param: shape, fitted spec, and bytes per device."""
    lines = []
    specs = param_specs(params, rules)
    for (path, x), s in zip(jax.tree_util.tree_flatten_with_path(params)[0], jax.tree.leaves(
            specs, is_leaf=lambda v: isinstance(v, P))):
        fitted = fit_spec(s, x.shape, mesh)
        shards = math.prod(mesh.shape[n] for e in fitted if e for n in (e if isinstance(e, tuple) else (e,)))
        nbytes = math.prod(x.shape) * np.dtype(x.dtype).itemsize // shards
        lines.append(f"{path_str(path):24s} {str(tuple(x.shape)):24s} {str(fitted):40s} {nbytes / 2**20:9.2f} MiB")
    return lines
