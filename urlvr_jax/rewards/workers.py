"""A small pool of worker processes with a per-item timeout, for code that may hang or crash.

``concurrent.futures.ProcessPoolExecutor`` cannot stop one stuck task (before Python 3.14 it can only
be torn down whole), so this pool manages its processes directly: each worker owns a pipe, gets one
call at a time, and is killed and replaced when the call overruns its timeout or the process dies.
The failed item gets ``default``. Workers run the call in their main thread, so libraries that use
``signal.alarm`` (math-verify) work inside them.

Processes come from the ``forkserver`` context (no fork of a process that holds JAX threads). The
worker imports only the module of the function it runs, so keep such functions in light modules.
"""

from __future__ import annotations

import multiprocessing as mp
import threading
import time
from collections import deque
from multiprocessing.connection import Connection, wait
from typing import Any, Callable, Sequence

Call = tuple[Callable[..., Any], tuple]

STARTUP_TIMEOUT_S = 120.0
MAX_STARTUP_FAILURES = 3
_READY = "ready"


def _worker_main(conn: Connection, initializer: Callable[[], None] | None) -> None:
    """Worker loop: receive (fn, args), send ("ok", result) or ("error", message); None stops it."""
    if initializer is not None:
        initializer()  # imports and warm-up happen before "ready", outside any item's timeout
    conn.send(_READY)
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        fn, args = message
        try:
            conn.send(("ok", fn(*args)))
        except Exception as error:  # noqa: BLE001 - any failure of the call is reported, not raised
            conn.send(("error", f"{type(error).__name__}: {error}"))


class _Worker:
    """One process, its pipe, and the item it is working on."""

    def __init__(self, context: mp.context.BaseContext, initializer: Callable[[], None] | None) -> None:
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_worker_main, args=(child, initializer), daemon=True)
        self.process.start()
        child.close()
        self.ready = False
        self.item: int | None = None
        self.deadline = 0.0
        self.started = time.monotonic()

    def stop(self, kill: bool = False) -> None:
        if not kill and self.process.is_alive():
            try:
                self.conn.send(None)
                self.process.join(1.0)
            except (OSError, ValueError):
                pass
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5.0)
        self.conn.close()


class WorkerPool:
    """``n_workers`` processes that run calls with a per-item timeout (see the module docstring).

    ``initializer`` (a module-level function) runs once in each new worker before it takes items.
    """

    def __init__(self, n_workers: int = 2, initializer: Callable[[], None] | None = None,
                 start_method: str = "forkserver") -> None:
        if n_workers < 1:
            raise ValueError(f"WorkerPool: n_workers must be >= 1, got {n_workers}")
        self._context = mp.get_context(start_method)
        self._initializer = initializer
        self._workers = [_Worker(self._context, initializer) for _ in range(n_workers)]
        self._lock = threading.Lock()
        self._startup_failures = 0
        self.replaced = 0  # how many workers were killed or found dead (for logs and tests)

    def _replace(self, index: int) -> None:
        self._workers[index].stop(kill=True)
        self._workers[index] = _Worker(self._context, self._initializer)
        self.replaced += 1

    def run(self, calls: Sequence[Call], timeout_s: float, default: Any = None) -> list[Any]:
        """Results of ``fn(*args)`` for each call, in order; ``default`` on error, crash or timeout."""
        results: list[Any] = [default] * len(calls)
        pending = deque(range(len(calls)))
        with self._lock:
            if not self._workers:
                raise RuntimeError("WorkerPool.run: the pool is closed")
            while pending or any(w.item is not None for w in self._workers):
                self._dispatch(calls, pending, timeout_s)
                self._collect(results, default)
        return results

    def _dispatch(self, calls: Sequence[Call], pending: deque, timeout_s: float) -> None:
        for worker in self._workers:
            if pending and worker.ready and worker.item is None:
                worker.item = pending.popleft()
                worker.deadline = time.monotonic() + timeout_s
                worker.conn.send(calls[worker.item])

    def _collect(self, results: list[Any], default: Any) -> None:
        now = time.monotonic()
        deadlines = [
            w.deadline if w.ready else w.started + STARTUP_TIMEOUT_S
            for w in self._workers
            if w.item is not None or not w.ready
        ]
        wait_s = max(0.0, min(deadlines, default=now) - now)
        ready = set(wait([w.conn for w in self._workers], timeout=wait_s))
        now = time.monotonic()
        for index, worker in enumerate(self._workers):
            if worker.conn in ready:
                try:
                    message = worker.conn.recv()
                except (EOFError, OSError):  # the process died (crash, os._exit, OOM kill)
                    self._fail(index, results, default)
                    continue
                if message == _READY:
                    worker.ready = True
                    self._startup_failures = 0
                else:
                    status, value = message
                    results[worker.item] = value if status == "ok" else default
                    worker.item = None
            elif (worker.ready and worker.item is not None and now > worker.deadline) or (
                not worker.ready and now > worker.started + STARTUP_TIMEOUT_S
            ):
                self._fail(index, results, default)

    def _fail(self, index: int, results: list[Any], default: Any) -> None:
        worker = self._workers[index]
        if not worker.ready:
            self._startup_failures += 1
            if self._startup_failures > MAX_STARTUP_FAILURES:
                raise RuntimeError(
                    f"WorkerPool: {self._startup_failures} workers in a row died or hung before they "
                    "were ready (check that the worker can import its module)"
                )
        if worker.item is not None:
            results[worker.item] = default
        self._replace(index)

    def close(self) -> None:
        """Stops every worker (idempotent)."""
        with self._lock:
            for worker in self._workers:
                worker.stop()
            self._workers = []
