"""Everything that differs when a run spans several processes (a TPU pod slice, a multi-node GPU job).

Every process runs the same program on one global mesh. Three things change, and this module is the one
place that handles them:

* **Placing values.** :func:`place` puts host values (equal on every process) onto global shardings;
  typed PRNG keys travel as their raw ``uint32`` key data, since ``device_put`` refuses keys on a sharding
  with devices of other processes.
* **Reading values.** :func:`to_host` returns a global array's full value on every process (a collective
  ``process_allgather`` when shards live on other processes; a plain copy otherwise). Every process must
  call it, in the same order.
* **Agreeing and writing.** :func:`agree` makes every process hold process 0's value of a host pytree
  (rewards graded with timeouts may differ between hosts; process 0's grades are the run's), and
  :func:`is_primary` marks the one process that writes files (config, metrics, TensorBoard, plots,
  exports, checkpoint quarantine). Orbax checkpoints are collective and handled by orbax itself.

In a single process every function is the plain single-host operation.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np


def process_count() -> int:
    return jax.process_count()


def is_primary() -> bool:
    """True on the process that writes the run's files (process 0)."""
    return jax.process_index() == 0


def is_key(x: Any) -> bool:
    dtype = getattr(x, "dtype", None)
    return dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key)


def key_data_sharding(sharding: Any, extra_dims: int) -> Any:
    """A key's sharding extended over the trailing key-data dimensions (replicated)."""
    if isinstance(sharding, jax.sharding.NamedSharding):
        spec = tuple(sharding.spec) + (None,) * extra_dims
        return jax.sharding.NamedSharding(sharding.mesh, jax.sharding.PartitionSpec(*spec))
    return sharding


def place(tree: Any, shardings: Any) -> Any:
    """``jax.device_put(tree, shardings)`` that also places typed PRNG keys across processes.

    ``shardings`` is one sharding or a pytree of them matching ``tree``. Host values must be equal on every
    process (jax checks this when the sharding spans processes).
    """
    if process_count() == 1:
        return jax.device_put(tree, shardings)
    if isinstance(shardings, jax.sharding.Sharding):
        shardings = jax.tree.map(lambda _: shardings, tree)

    def put(x: Any, sharding: Any) -> Any:
        if not is_key(x):
            return jax.device_put(x, sharding)
        data = np.asarray(jax.random.key_data(x))
        placed = jax.device_put(data, key_data_sharding(sharding, data.ndim - x.ndim))
        return jax.random.wrap_key_data(placed, impl=jax.random.key_impl(x))

    return jax.tree.map(put, tree, shardings)


def _host_value(x: Any) -> Any:
    if not isinstance(x, jax.Array) or x.is_fully_addressable or x.is_fully_replicated:
        return np.asarray(x) if isinstance(x, jax.Array) else x
    from jax.experimental import multihost_utils

    return np.asarray(multihost_utils.process_allgather(x, tiled=True))


def to_host(tree: Any) -> Any:
    """The full value of every array of ``tree`` as numpy, on every process (collective across processes)."""
    return jax.tree.map(_host_value, tree)


def agree(tree: Any) -> Any:
    """Process 0's value of a host pytree (numpy arrays / Python scalars), on every process.

    Every process must call it with a tree of the same structure, shapes and dtypes. Used for values computed
    on the host that could differ between processes (graded rewards and their metrics).
    """
    if process_count() == 1:
        return tree
    from jax.experimental import multihost_utils

    leaves, treedef = jax.tree.flatten(tree)
    arrays = [np.ascontiguousarray(np.asarray(x)) for x in leaves]
    # One collective for the whole tree, as raw bytes: float64 / int64 values travel exactly (jax would
    # otherwise cast them to 32 bits).
    flat = np.concatenate([a.reshape(-1).view(np.uint8) for a in arrays] or [np.zeros(0, np.uint8)])
    flat = np.asarray(multihost_utils.broadcast_one_to_all(flat))
    out, offset = [], 0
    for x, a in zip(leaves, arrays):
        value = flat[offset:offset + a.nbytes].view(a.dtype).reshape(a.shape)
        offset += a.nbytes
        out.append(value if isinstance(x, np.ndarray) else value.item())
    return jax.tree.unflatten(treedef, out)


def barrier(name: str) -> None:
    """Every process waits here until all have arrived (a no-op in one process)."""
    if process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


class _Silent:
    """Stands in for a writer on the processes that write nothing: every method call does nothing."""

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None


def primary_only(make: Any) -> Any:
    """``make()`` on process 0 (a metrics logger, a file writer); elsewhere an object that ignores every call."""
    return make() if is_primary() else _Silent()


def primary_first(make: Any) -> Any:
    """``make()`` on process 0, then on the others once it has returned: for a step that writes a file the others
    then reuse (a warm-started prior, a prepared dataset), so no two processes write the same file."""
    result = make() if is_primary() else None
    barrier("primary_first")
    return result if is_primary() else make()
