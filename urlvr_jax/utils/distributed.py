"""Multi-host start-up: ``jax.distributed.initialize`` from environment variables.

Every host of a TPU pod slice or a GPU cluster runs the same command; the launch scripts in ``launch/`` set

* ``URLVR_DISTRIBUTED=1`` to initialise at all (unset or 0: a single-process run, nothing happens);
* ``URLVR_COORDINATOR`` (``host:port`` of process 0), ``URLVR_NUM_PROCESSES`` and ``URLVR_PROCESS_ID``
  on GPU clusters. On a TPU pod slice (and under SLURM or Open MPI, which JAX detects itself) they may be
  left unset: ``jax.distributed.initialize()`` finds the coordinator and the process ids on its own.
* ``URLVR_LOCAL_DEVICE_IDS`` (optional, e.g. ``0,1,2,3``): the local devices this process drives.
* ``URLVR_HEARTBEAT_TIMEOUT`` (seconds, default 100, JAX's default): after how long without heartbeats JAX's
  coordination service declares a process dead and aborts every other one.

Call :func:`maybe_initialize` first thing in a program's ``main``, before anything touches a device.

**A dead host.** When a process dies (its host lost, OOM-killed, SIGKILLed), the others block in the next collective
until JAX's coordination service aborts them, with a C++ stack trace that does not say what to do. :class:`PeerWatch`
gets there first: every process bumps its own counter in the coordination service's key-value store every
``timeout / 10`` seconds and reads everyone's; when a peer's counter has not moved for ``timeout`` (0.8 x the heartbeat
timeout) or the store stops answering (process 0, which holds it, is gone), the process prints one ``error:`` line
naming the process and how to resume, and exits with :data:`PEER_LOST_EXIT_CODE`. Where the collective itself fails
first (gloo on CPU: "Connection reset by peer"), :func:`lost_peer_line` gives the entry point the same line.
"""

from __future__ import annotations

import atexit
import os
import re
import threading
import time
from typing import Mapping

_TRUE = {"1", "true", "yes", "on"}
PEER_LOST_EXIT_CODE = 69  # EX_UNAVAILABLE (sysexits.h): another process of the run is gone
# How a collective's error reads when the process at the other end is gone.
_PEER_GONE = re.compile(r"(?i)gloo|nccl|connection (reset|closed|refused)|unavailable|heartbeat|coordination service")
_WATCH: "PeerWatch | None" = None


_CLUSTER_VARS = {"coordinator_address": "URLVR_COORDINATOR", "num_processes": "URLVR_NUM_PROCESSES",
                 "process_id": "URLVR_PROCESS_ID"}


def distributed_kwargs(env: Mapping[str, str] | None = None) -> dict | None:
    """The ``jax.distributed.initialize`` keyword arguments the environment asks for; None: do not initialise."""
    env = os.environ if env is None else env
    if env.get("URLVR_DISTRIBUTED", "").strip().lower() not in _TRUE:
        return None
    kwargs: dict = {}
    for key, name in _CLUSTER_VARS.items():
        value = env.get(name, "").strip()
        if not value:
            continue
        if key == "coordinator_address":
            kwargs[key] = value
            continue
        try:
            kwargs[key] = int(value)
        except ValueError:
            raise ValueError(f"{name}={value!r} must be an integer") from None
    if kwargs and len(kwargs) < len(_CLUSTER_VARS):
        missing = sorted(name for key, name in _CLUSTER_VARS.items() if key not in kwargs)
        raise ValueError(f"URLVR_DISTRIBUTED=1 with a partial cluster description: set {', '.join(missing)} too "
                         "(or none of the three, to let JAX detect the cluster on TPU / SLURM / Open MPI)")
    if env.get("URLVR_LOCAL_DEVICE_IDS", "").strip():
        kwargs["local_device_ids"] = [int(i) for i in env["URLVR_LOCAL_DEVICE_IDS"].split(",") if i.strip()]
    timeout = env.get("URLVR_HEARTBEAT_TIMEOUT", "").strip()
    if timeout and (not timeout.isdigit() or int(timeout) < 2):
        raise ValueError(f"URLVR_HEARTBEAT_TIMEOUT={timeout!r} must be a whole number of seconds >= 2")
    if timeout:
        kwargs["heartbeat_timeout_seconds"] = int(timeout)
    return kwargs


def maybe_initialize(env: Mapping[str, str] | None = None) -> bool:
    """Calls ``jax.distributed.initialize`` when ``URLVR_DISTRIBUTED`` is set; returns whether it did."""
    kwargs = distributed_kwargs(env)
    if kwargs is None:
        return False
    import jax

    jax.distributed.initialize(**kwargs)
    if jax.process_index() == 0:
        print(f"jax.distributed: {jax.process_count()} processes, {jax.device_count()} devices "
              f"({jax.local_device_count()} local)", flush=True)
    from jax._src import distributed

    global _WATCH
    if distributed.global_state.client is not None:
        _WATCH = PeerWatch(distributed.global_state, 0.8 * kwargs.get("heartbeat_timeout_seconds", 100))
        _WATCH.start()
        atexit.register(_WATCH.stop)
    return True


def shutdown() -> None:
    """Leave the pod together (every process calls it): stop the watch, then ``jax.distributed.shutdown()``."""
    if _WATCH is not None:
        import jax

        _WATCH.stop()
        jax.distributed.shutdown()


class PeerWatch(threading.Thread):
    """Ends this process with one line when another process of the run stops (see the module doc)."""

    def __init__(self, state, timeout: float):  # state: jax's distributed.global_state, once initialised
        super().__init__(name="urlvr-peer-watch", daemon=True)
        self.client, self.me, self.count, self.timeout = state.client, state.process_id, state.num_processes, timeout
        self._stop, self._lock = threading.Event(), threading.Lock()  # (the lock: "done" is never overwritten)

    def stop(self) -> None:
        """Stop watching, and tell the others this process is leaving on purpose (they stop watching it)."""
        with self._lock:
            if self._stop.is_set():
                return
            self._stop.set()
            try:
                self.client.key_value_set(f"urlvr_alive/{self.me}", "done", allow_overwrite=True)
            except Exception:  # noqa: BLE001 - the coordinator is gone already: nobody is left to tell
                pass

    def run(self) -> None:
        beat, seen, failing_since = 0, {}, None  # seen: process -> (its last counter, when it changed)
        while not self._stop.wait(self.timeout / 10):
            now, beat = time.monotonic(), beat + 1
            try:
                with self._lock:
                    if self._stop.is_set():
                        return
                    self.client.key_value_set(f"urlvr_alive/{self.me}", str(beat), allow_overwrite=True)
                counters = dict(self.client.key_value_dir_get("urlvr_alive/"))
                failing_since = None
            except Exception as err:  # noqa: BLE001 - the coordination service is unreachable
                failing_since = failing_since or now
                if now - failing_since >= self.timeout and not self._stop.is_set():
                    self._lost(f"process 0 (the coordinator, which this process lost {now - failing_since:.0f} s "
                               f"ago: {str(err).splitlines()[0][:120]})")
                continue
            for p in range(self.count):
                value = counters.get(f"urlvr_alive/{p}")
                if p not in seen or seen[p][0] != value:
                    seen[p] = (value, now)
                elif now - seen[p][1] >= self.timeout and value not in (None, "done") and not self._stop.is_set():
                    self._lost(f"process {p} (silent for {now - seen[p][1]:.0f} s)")

    def _lost(self, who: str) -> None:
        os.write(2, f"\n{_lost_line(who, self.count)}\n".encode())
        os._exit(PEER_LOST_EXIT_CODE)


def _lost_line(who: str, count: int) -> str:
    return (f"error: lost {who} of this {count}-process run: its host died, was preempted or killed, or it stopped "
            f"with an error (see its log). The run cannot go on without it; the last checkpoint in run_dir is kept: "
            f"run the same command on every host to resume from it")


def lost_peer_line(err: BaseException) -> str | None:
    """The one line for a cross-process collective that failed because a peer is gone; None for any other error."""
    if _WATCH is None or type(err).__name__ not in ("JaxRuntimeError", "XlaRuntimeError"):
        return None
    first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    if not _PEER_GONE.search(first):
        return None
    return _lost_line(f"another process (a collective failed: {first[:160]})", _WATCH.count)
