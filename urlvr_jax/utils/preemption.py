"""Stopping a run when the scheduler asks: SIGTERM or SIGINT becomes a checkpoint at a step every process agrees on.

A preemptible TPU slice, a spot VM and a SLURM job at its time limit all send SIGTERM and then, after a grace period,
SIGKILL. :class:`PreemptionWatch` turns the signal into a flag the loop reads once per step (:meth:`reached`), so a
signal never interrupts a step or a checkpoint save: the step in flight finishes, its checkpoint is written and
verified, and the run raises :class:`Preempted`, which the entry point (:mod:`urlvr_jax.utils.entry`) prints as one line
and turns into the exit code :data:`PREEMPTED_EXIT_CODE`, on which the launchers requeue the job.

* **One process**: Python handlers for SIGTERM and SIGINT set the flag (a second SIGINT interrupts at once, as Ctrl-C
  normally does).
* **Several processes** (``jax.distributed`` initialised): JAX's preemption notifier, installed by
  ``jax.distributed.initialize``, takes SIGTERM; the coordination service propagates the notice to every process (a
  SIGTERM to one process is enough), and ``multihost_utils.reached_preemption_sync_point(step)`` is True on every
  process at the same step (the largest step any process had reached, plus one). SIGINT is passed on to that notifier
  as a SIGTERM to this process.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

PREEMPTED_EXIT_CODE = 75  # EX_TEMPFAIL (sysexits.h): "try again later"; the launchers requeue on it


class Preempted(Exception):
    """The run stopped at ``step`` on a preemption signal, after its checkpoint was saved."""

    def __init__(self, step: int, checkpoint_dir: str):
        self.step, self.checkpoint_dir = int(step), checkpoint_dir
        super().__init__(f"preempted at step {step}: checkpoint saved to {checkpoint_dir}; "
                         f"run the same command to resume")


def _jax_notifier_active() -> bool:
    """Whether ``jax.distributed`` is initialised (its preemption notifier then owns SIGTERM)."""
    from jax._src import distributed

    return distributed.global_state.client is not None


class PreemptionWatch:
    """``with PreemptionWatch() as watch:`` installs the handlers; ``watch.reached(step)`` each step (on every process,
    every step, from the same first step) says whether to save and stop there. The previous handlers come back on
    exit."""

    _SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.signal_name: str | None = None
        self._previous: dict[int, Any] = {}
        self._jax = False

    def __enter__(self) -> "PreemptionWatch":
        self._jax = _jax_notifier_active()
        for sig in (signal.SIGINT,) if self._jax else self._SIGNALS:
            self._previous[sig] = signal.signal(sig, self._on_signal)
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _on_signal(self, signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        if self.signal_name == "SIGINT" and signum == signal.SIGINT:
            raise KeyboardInterrupt  # Ctrl-C twice: stop now
        if self.signal_name is None:
            print(f"received {name}: finishing the step in flight, saving a checkpoint, then stopping "
                  f"(exit {PREEMPTED_EXIT_CODE})" + ("; Ctrl-C again stops at once" if name == "SIGINT" else ""),
                  file=sys.stderr, flush=True)
        self.signal_name = self.signal_name or name
        if self._jax:
            os.kill(os.getpid(), signal.SIGTERM)  # to JAX's notifier, which tells every process

    def reached(self, step: int) -> bool:
        """True at the step where every process stops (collective when several processes run: call it each step)."""
        if self._jax:
            from jax.experimental import multihost_utils

            return multihost_utils.reached_preemption_sync_point(int(step))
        return self.signal_name is not None
