"""Placing a params pytree (policy or reference model) on a mesh, optionally kept in host memory.

The policy and the reference model may live on different meshes (e.g. the policy on data 2 x fsdp 2 x
tensor 2, the reference on fsdp 8): each is placed with :func:`urlvr_jax.sharding.param_shardings` fitted to
its own mesh. With ``offload_to_host=True`` the shards stay in the devices' ``pinned_host`` memory between
uses and :func:`fetch_to_device` brings them back (same sharding, device memory) right before a forward pass.
A backend without a ``pinned_host`` memory space (older CPU runtimes) keeps them in device memory instead;
on CPU that is host RAM anyway, so nothing is lost. :func:`host_offload_supported` says which one happens.
"""

from __future__ import annotations

import jax
from jax.sharding import Mesh, NamedSharding

from urlvr_jax import sharding as shd
from urlvr_jax.model.transformer import Params

HOST_MEMORY = "pinned_host"


def host_offload_supported(mesh: Mesh) -> bool:
    """True if every device of ``mesh`` has a ``pinned_host`` memory space."""
    return all(any(m.kind == HOST_MEMORY for m in d.addressable_memories()) for d in mesh.devices.flat)


def _shardings(params: Params, mesh: Mesh, memory_kind: str | None) -> Params:
    shardings = shd.param_shardings(params, mesh)
    if memory_kind is None:
        return shardings
    return jax.tree.map(lambda s: NamedSharding(mesh, s.spec, memory_kind=memory_kind), shardings)


def place_params(params: Params, mesh: Mesh, offload_to_host: bool = False) -> Params:
    """``params`` (numpy, host or device arrays, on any mesh) laid out on ``mesh`` by the partition rules.

    With ``offload_to_host`` the arrays live in pinned host memory when the backend supports it (see the
    module docstring); call :func:`fetch_to_device` before computing with them.
    """
    kind = HOST_MEMORY if offload_to_host and host_offload_supported(mesh) else None
    return jax.device_put(params, _shardings(params, mesh, kind))


def fetch_to_device(params: Params, mesh: Mesh) -> Params:
    """``params`` on ``mesh`` in device memory (a no-op for arrays already there with those shardings)."""
    kind = "device" if host_offload_supported(mesh) else None
    return jax.device_put(params, _shardings(params, mesh, kind))


def memory_kinds(params: Params) -> set[str | None]:
    """The memory kinds holding the leaves of ``params`` (e.g. ``{"pinned_host"}``)."""
    return {x.sharding.memory_kind for x in jax.tree.leaves(params)}
