"""Orbax checkpoints of the training state: params, optimizer state, step, RNG and the data position.

Each checkpoint step directory holds two orbax items:
  * ``state``: the training-state pytree (``StandardSave``). Typed PRNG keys are stored as their raw
    ``uint32`` key data and rebuilt with ``jax.random.wrap_key_data`` on restore.
  * ``meta``: JSON with the step, the data-iterator state, the PRNG implementation of each key leaf and a
    content checksum of every array (:func:`checksums`).

``save`` refuses a state with a non-finite float (a FloatingPointError naming the leaf), and ``restore`` checks
every array against its recorded checksum: a flipped bit fails the restore like a truncated file does.

Saving is asynchronous (orbax's async checkpointing): ``save`` computes the checksums on the devices, copies the
state to host memory (one host copy of this process's shards of the saved state, held until the write ends) and
returns; the files are written while the next step runs. Orbax writes each step into a temporary directory and renames
it only once every file is in place, so a process killed mid-write leaves the previous step the latest one. The next
``save``, :meth:`CheckpointManager.wait` and ``close`` wait for the write in flight (and raise its error, if any).
``restore_latest`` walks the steps
newest-first and skips (with a warning) any step that fails to restore. A skipped step is never deleted:
if training later has to write the same or an earlier step number, the skipped directory is moved to
``<directory>/_corrupt/`` first.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import time
import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
from etils import epath

from urlvr_jax.utils import multihost
from urlvr_jax.utils.run_storage import is_url
from urlvr_jax.utils.multihost import is_key as _is_key, key_data_sharding as _key_data_sharding

CORRUPT_SUBDIR = "_corrupt"


def _path_str(path: tuple) -> str:
    return jax.tree_util.keystr(path)


def _split_keys(state: Any) -> tuple[Any, dict[str, str]]:
    """Replace typed PRNG keys by their uint32 key data; return the impl name of each key leaf."""
    impls: dict[str, str] = {}

    def convert(path: tuple, x: Any) -> Any:
        if _is_key(x):
            impls[_path_str(path)] = str(jax.random.key_impl(x))
            return jax.random.key_data(x)
        return x

    return jax.tree_util.tree_map_with_path(convert, state), impls


def _abstract_leaf(x: Any) -> Any:
    """Abstract restore target for one leaf (keys become their uint32 key data)."""
    if _is_key(x):
        data = jax.eval_shape(jax.random.key_data, x)
        sharding = getattr(x, "sharding", None)
        if sharding is not None:
            sharding = _key_data_sharding(sharding, len(data.shape) - len(x.shape))
        return jax.ShapeDtypeStruct(data.shape, data.dtype, sharding=sharding)
    if isinstance(x, jax.Array):
        return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding)
    return x  # ShapeDtypeStruct, numpy array or Python scalar: orbax handles it as is.


def _rewrap_keys(abstract_state: Any, restored: Any, impls: dict[str, str]) -> Any:
    """Rebuild typed PRNG keys wherever ``abstract_state`` has one."""

    def convert(path: tuple, target: Any, value: Any) -> Any:
        if not _is_key(target):
            return value
        name = _path_str(path)
        if name not in impls:
            raise ValueError(f"checkpoint has raw data, not a typed PRNG key, at state{name}")
        return jax.random.wrap_key_data(value, impl=impls[name])

    return jax.tree_util.tree_map_with_path(convert, abstract_state, restored)


def _position_index(shape: tuple[int, ...]) -> jax.Array:
    """Each element's row-major position, as uint32 (mod 2**32), built from iotas so it shards like the array."""
    index = jnp.zeros(shape, jnp.uint32)
    stride = 1
    for dim in reversed(range(len(shape))):
        index = index + jax.lax.broadcasted_iota(jnp.uint32, shape, dim) * jnp.uint32(stride % 2**32)
        stride *= shape[dim]
    return index


def _leaf_summary(x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(two uint32 position-weighted sums of the value's bits, whether every value is finite).

    The bits are read as 32-bit words (narrower types widened, 8-byte types as two words). Sums of
    ``word * odd weight`` mod 2**32 change with any single flipped bit, moved value or swapped pair, and,
    being integer sums, do not depend on how the array is sharded or in what order XLA adds.
    """
    size = x.dtype.itemsize
    if x.dtype == jnp.bool_:
        words = x.astype(jnp.uint32)
    elif size == 8:
        words = jax.lax.bitcast_convert_type(x, jnp.uint32)  # [..., 2]
    else:
        words = jax.lax.bitcast_convert_type(x, {1: jnp.uint8, 2: jnp.uint16, 4: jnp.uint32}[size]).astype(jnp.uint32)
    index = _position_index(words.shape)
    w1 = (index * jnp.uint32(0x9E3779B1) + jnp.uint32(0x85EBCA77)) | jnp.uint32(1)
    w2 = (index * jnp.uint32(0xC2B2AE3D) + jnp.uint32(0x27D4EB2F)) | jnp.uint32(1)
    sums = jnp.stack([jnp.sum(words * w1, dtype=jnp.uint32),
                      jnp.sum((words ^ (words >> jnp.uint32(15))) * w2, dtype=jnp.uint32)])
    finite = jnp.all(jnp.isfinite(x)) if jnp.issubdtype(x.dtype, jnp.inexact) else jnp.bool_(True)
    return sums, finite


_summaries = jax.jit(lambda leaves: [_leaf_summary(x) for x in leaves])


def checksums(tree: Any) -> tuple[dict[str, str], list[str]]:
    """({leaf path: 16-hex-digit checksum} of every array leaf of ``tree``, paths of leaves with a non-finite value).

    Computed on the devices where the arrays live, never gathered: one program for the leaves on each set of devices
    (a run's state is one), each finished before the next starts, so that programs communicating across processes
    never run concurrently (two in flight can order their collectives differently on two processes and deadlock).
    """
    named = [(_path_str(p), x) for p, x in jax.tree_util.tree_leaves_with_path(tree)
             if isinstance(x, (jax.Array, np.ndarray, np.generic))]
    groups: dict[Any, list[int]] = {}
    for i, (_, x) in enumerate(named):
        groups.setdefault(frozenset(x.sharding.device_set) if isinstance(x, jax.Array) else None, []).append(i)
    out: list[Any] = [None] * len(named)
    for indices in groups.values():
        for i, summary in zip(indices, multihost.to_host(_summaries([named[i][1] for i in indices]))):
            out[i] = summary
    sums = {name: f"{int(s[0]):08x}{int(s[1]):08x}" for (name, _), (s, _) in zip(named, out)}
    return sums, [name for (name, _), (_, finite) in zip(named, out) if not finite]


class CheckpointManager:
    """Keeps the last ``keep`` checkpoints of the training state under ``directory``.

    Args:
      directory: checkpoint root (created if missing); one sub-directory per step.
      keep: how many of the newest checkpoints to keep (older ones are deleted by orbax).
      save_every: ``save`` writes only when ``step % save_every == 0`` unless ``force=True``.
    """

    def __init__(self, directory: str | os.PathLike, keep: int = 3, save_every: int = 1):
        if int(keep) < 1:
            raise ValueError(f"checkpoint keep must be >= 1, got {keep!r}")
        if int(save_every) < 1:
            raise ValueError(f"checkpoint save_every must be >= 1, got {save_every!r}")
        self.directory = os.fspath(directory) if is_url(directory) else os.path.abspath(os.fspath(directory))
        self.keep = int(keep)
        self.save_every = int(save_every)
        self._failed: set[int] = set()
        self._pending: int | None = None  # the step being written in the background
        options = ocp.CheckpointManagerOptions(
            max_to_keep=self.keep,
            save_interval_steps=1,
            enable_async_checkpointing=True,
            cleanup_tmp_directories=True,  # the half-written step of a killed run
            create=True,
        )
        self._mgr = ocp.CheckpointManager(self.directory, options=options, item_names=("state", "meta"))

    # ------------------------------------------------------------------ queries
    def all_steps(self) -> list[int]:
        """All step numbers present on disk (restorable or not), ascending (after the write in flight)."""
        self.wait()
        return sorted(int(s) for s in self._mgr.all_steps())

    def latest_step(self) -> int | None:
        """Newest step on disk, or None. It may still fail to restore; see ``restore_latest``."""
        steps = self.all_steps()
        return steps[-1] if steps else None

    def step_dir(self, step: int) -> str:
        """Directory holding checkpoint ``step``."""
        return f"{self.directory.rstrip('/')}/{step}"

    # --------------------------------------------------------------------- save
    def should_save(self, step: int, force: bool = False) -> bool:
        return force or step % self.save_every == 0

    def save(self, step: int, state: Any, data_state: dict, force: bool = False) -> bool:
        """Start writing checkpoint ``step`` (the write goes on in the background). Returns whether it was started.

        ``state`` is any pytree of arrays / Python scalars (typically ``params``, ``opt_state``,
        ``step`` and ``rng``); ``data_state`` must be JSON-serialisable. The previous write is waited for first.
        """
        step = int(step)
        if not self.should_save(step, force):
            return False
        self.wait()
        self._move_failed_aside(min_step=step)
        if any(s >= step for s in self.all_steps()):
            return False  # a healthy checkpoint at this step (or later) already exists
        saveable, impls = _split_keys(state)
        data_state = jax.tree.map(lambda x: x.item() if isinstance(x, (np.generic, np.ndarray)) and x.size == 1
                                  else x, data_state)
        sums, nonfinite = checksums(saveable)
        if nonfinite:
            raise FloatingPointError(f"refusing to save checkpoint step {step} in {self.directory}: state"
                                     f"{nonfinite[0]} has non-finite values" +
                                     (f" (and {len(nonfinite) - 1} more leaves)" if len(nonfinite) > 1 else ""))
        meta = {"step": step, "data_state": data_state, "key_impls": impls, "checksums": sums}
        try:
            json.dumps(meta, allow_nan=False)
        except (TypeError, ValueError) as err:
            raise TypeError(f"checkpoint data_state must be JSON-serialisable: {err}") from None
        self._pending = step
        with self._storage_errors():
            self._mgr.save(
                step,
                args=ocp.args.Composite(state=ocp.args.StandardSave(saveable), meta=ocp.args.JsonSave(meta)),
                force=True,
            )
        return True

    def wait(self) -> None:
        """Wait until the write in flight (if any) is committed; raises its error."""
        with self._storage_errors():
            self._mgr.wait_until_finished()
        self._pending = None

    @contextlib.contextmanager
    def _storage_errors(self):
        """Storage errors (OSError, or tensorstore's with the message only) as one OSError naming the step."""
        try:
            yield
        except Exception as err:  # noqa: BLE001 - storage errors reach us as OSError or as tensorstore's errors
            code = getattr(err, "errno", None) or (errno.ENOSPC if "No space left" in str(err) else None)
            if code is None:
                raise
            step, self._pending = self._pending, None
            raise OSError(code, f"cannot write checkpoint step {step} to {self.step_dir(step)}: "
                                f"{os.strerror(code)} (the previous checkpoints are kept)") from err

    def _move_failed_aside(self, min_step: int) -> None:
        """Move skipped (unrestorable) step dirs >= ``min_step`` to ``_corrupt/`` so they can be rewritten."""
        failed = sorted(s for s in self._failed if s >= min_step)
        if not failed:
            return
        for step in failed:
            src = self.step_dir(step)
            if epath.Path(src).exists() and multihost.is_primary():  # one process moves; the others wait below
                dst_root = epath.Path(self.directory) / CORRUPT_SUBDIR
                dst_root.mkdir(parents=True, exist_ok=True)
                dst = dst_root / f"{step}.{time.strftime('%Y%m%d-%H%M%S')}.{os.getpid()}"
                epath.Path(src).rename(dst)  # local paths and gs:// alike
                warnings.warn(f"moved unrestorable checkpoint step {step} from {src} to {dst}", stacklevel=3)
            self._failed.discard(step)
        multihost.barrier("checkpoint_move_aside")
        self._mgr.reload()

    # ------------------------------------------------------------------ restore
    def restore(self, step: int, abstract_state: Any) -> tuple[Any, dict]:
        """Restore checkpoint ``step`` into the structure, dtypes and shardings of ``abstract_state``."""
        self.wait()
        target = jax.tree.map(_abstract_leaf, abstract_state)
        restored = self._mgr.restore(
            int(step),
            args=ocp.args.Composite(state=ocp.args.StandardRestore(target), meta=ocp.args.JsonRestore()),
        )
        meta = restored.meta
        if not isinstance(meta, dict) or "data_state" not in meta:
            raise ValueError(f"checkpoint meta of step {step} has no 'data_state' field")
        if "checksums" in meta:  # (checkpoints written before checksums were recorded have none)
            _verify(step, meta["checksums"], checksums(restored.state)[0])
        state = _rewrap_keys(abstract_state, restored.state, meta.get("key_impls", {}))
        return state, meta["data_state"]

    def restore_latest(self, abstract_state: Any) -> tuple[Any, dict] | None:
        """Restore the newest checkpoint that loads; None (with a warning) if there is none that does.

        Steps that raise while restoring (missing or truncated files, no commit marker, ...) are skipped
        with a ``warnings.warn`` naming the step, its directory and the error; nothing is deleted.
        """
        self.wait()
        self._mgr.reload()
        steps = self.all_steps()
        if not steps:
            return None
        for step in reversed(steps):
            try:
                result = self.restore(step, abstract_state)
            except Exception as err:  # noqa: BLE001 - any failure means "try the previous step"
                self._failed.add(step)
                warnings.warn(
                    f"skipping checkpoint step {step} at {self.step_dir(step)}: could not restore it "
                    f"({type(err).__name__}: {str(err)[:500]}); trying the previous one",
                    stacklevel=2,
                )
                continue
            return result
        warnings.warn(
            f"no restorable checkpoint in {self.directory} (tried steps {steps}); starting from scratch",
            stacklevel=2,
        )
        return None

    def close(self) -> None:
        """Wait for the write in flight, then release orbax's threads."""
        try:
            self.wait()
        finally:
            self._mgr.close()

    def __enter__(self) -> "CheckpointManager":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _verify(step: int, recorded: dict[str, str], actual: dict[str, str]) -> None:
    """Raises ValueError naming the first array whose content differs from what the save recorded."""
    if set(recorded) != set(actual):
        raise ValueError(f"checkpoint step {step} holds arrays {sorted(set(actual) ^ set(recorded))[:3]} that the "
                         f"saved checksums do not list, or lacks them")
    bad = [name for name in recorded if recorded[name] != actual[name]]
    if bad:
        raise ValueError(f"content checksum mismatch in state{bad[0]}" + (f" and {len(bad) - 1} more arrays"
                         if len(bad) > 1 else "") + f" of checkpoint step {step}: its files were altered")


def to_numpy_tree(tree: Any) -> Any:
    """Host copy of a pytree (typed keys become key data): handy for bit-for-bit comparisons."""
    return jax.tree.map(lambda x: np.asarray(jax.random.key_data(x) if _is_key(x) else x), tree)
