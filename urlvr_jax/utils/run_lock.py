"""One run per run_dir: ``run_dir/run.lock`` names the run that holds the directory (pid, host, start time).

:func:`hold` creates the lock file exclusively (``O_CREAT | O_EXCL``), so of two runs started together exactly
one gets it; the other is refused with a :class:`RunDirBusy` naming the holder. A lock left by a process that
no longer exists on this host (a SIGKILLed run) is taken over with a warning; a lock from another host cannot be
checked and is refused, with the command that clears it. In a run of several processes only process 0 takes the
lock and every process learns the outcome (so none waits forever in a collective).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
import warnings
from typing import Iterator

import numpy as np

from urlvr_jax.utils import multihost
from urlvr_jax.utils.errors import UserError

LOCK_FILE = "run.lock"


class RunDirBusy(UserError):
    """Another run holds the run_dir."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by another user
    return True


def _read(path: str) -> tuple[str, dict]:
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        return "", {}
    try:
        holder = json.loads(text)
    except json.JSONDecodeError:
        holder = {}
    return text, holder if isinstance(holder, dict) else {}


def _describe(holder: dict) -> str:
    return (f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')} since "
            f"{holder.get('started', '?')}")


def acquire(run_dir: str) -> str:
    """Takes ``run_dir/run.lock`` for this process; returns its path. Raises :class:`RunDirBusy`."""
    path = os.path.join(run_dir, LOCK_FILE)
    mine = {"pid": os.getpid(), "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
    for _ in range(3):  # a lock released or taken over between our attempts: try again
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            text, holder = _read(path)
            if not text:
                continue  # released meanwhile
            pid = holder.get("pid")
            if holder.get("host") != mine["host"] or not isinstance(pid, int) or _alive(pid):
                raise RunDirBusy(f"run_dir {run_dir} is in use by {_describe(holder)} (lock file {path}); wait "
                                 f"for that run to end, choose another run_dir, or delete {path} if it is gone")
            if _read(path)[0] == text:  # still the same stale lock: take it over
                warnings.warn(f"taking over the stale lock {path} of {_describe(holder)}, which no longer runs",
                              stacklevel=2)
                with contextlib.suppress(FileNotFoundError):
                    os.remove(path)
            continue
        with os.fdopen(fd, "w") as f:
            json.dump(mine, f)
            f.write("\n")
        return path
    raise RunDirBusy(f"run_dir {run_dir}: could not take the lock file {path} (other runs keep taking it)")


def release(path: str) -> None:
    """Removes the lock file if it is still this process's."""
    if _read(path)[1].get("pid") == os.getpid():
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)


@contextlib.contextmanager
def hold(run_dir: str) -> Iterator[None]:
    """Holds the run_dir's lock (process 0) for the ``with`` block; every process raises if it is busy."""
    error = None
    path = None
    if multihost.is_primary():
        os.makedirs(run_dir, exist_ok=True)
        try:
            path = acquire(run_dir)
        except RunDirBusy as err:
            error = err
    busy = multihost.agree(np.int32(error is not None))
    if error is not None:
        raise error
    if busy:
        raise RunDirBusy(f"run_dir {run_dir} is in use by another run (process 0 could not take its lock)")
    try:
        yield
    finally:
        if path is not None:
            release(path)
