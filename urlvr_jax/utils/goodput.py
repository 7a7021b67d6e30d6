"""Goodput: where a run's wall time went, added up over every session (start, preemption, restart) of one run_dir.

:class:`Goodput` splits the wall time from the start of a session (the run's construction) to the end of its training
loop into

* ``step``: the training steps (rollout, rewards, update), less the compilation inside them: the productive time;
* ``compile``: JAX tracing, lowering and XLA compilation (a persistent-cache hit included), wherever it happens
  (from JAX's own compile events; nested events are counted once);
* ``checkpoint`` (saving: the checksums, the copy to host, waiting for the previous write) and ``restore``;
* ``validation``;
* ``recomputed``: the steps a restarted session does again, those a killed session had logged in ``metrics.jsonl``
  after its last checkpoint (their count and their logged ``*_time``, which were wall time spent for nothing);
* ``other``: the rest (building the model and data, logging).

The running totals travel in each checkpoint's data state (:meth:`Goodput.totals`, process 0's timings), so a resumed
session continues them. :meth:`Goodput.report` gives the ``goodput/*`` metrics and the one summary line.
"""

from __future__ import annotations

import bisect
import contextlib
import os
import time
from typing import Iterator

from jax import monitoring

from urlvr_jax.utils.metrics_log import read_metrics

PHASES = ("step", "compile", "checkpoint", "restore", "validation", "recomputed")
_COMPILE_EVENTS = ("/jax/core/compile/jaxpr_trace_duration", "/jax/core/compile/jaxpr_to_mlir_module_duration",
                   "/jax/core/compile/backend_compile_duration")


class _CompileSpans:
    """The union of JAX's compile-event time spans (wall clock), as sorted disjoint [start, end] intervals."""

    def __init__(self) -> None:
        self.starts: list[float] = []
        self.ends: list[float] = []

    def add(self, event: str, start: float, end: float, **kwargs) -> None:
        if event not in _COMPILE_EVENTS:
            return
        i = bisect.bisect_left(self.ends, start)  # the first interval that ends at or after this one starts
        j = bisect.bisect_right(self.starts, end)  # past the last interval that starts before this one ends
        if i < j:
            start, end = min(start, self.starts[i]), max(end, self.ends[j - 1])
        self.starts[i:j], self.ends[i:j] = [start], [end]

    def within(self, t0: float, t1: float) -> float:
        """Seconds of compilation between ``t0`` and ``t1``."""
        i = bisect.bisect_left(self.ends, t0)
        return sum(max(0.0, min(e, t1) - max(s, t0)) for s, e in zip(self.starts[i:], self.ends[i:]) if s < t1)


_SPANS = _CompileSpans()
monitoring.register_event_time_span_listener(_SPANS.add)


def lost_steps(run_dir: str, checkpoint_step: int) -> tuple[int, float]:
    """(how many train steps ``metrics.jsonl`` logged after ``checkpoint_step``, their logged seconds)."""
    path = os.path.join(run_dir, "metrics.jsonl")
    if not os.path.exists(path):
        return 0, 0.0
    lost = [r for r in read_metrics(path) if r["step"] > checkpoint_step and "train/update_time" in r]
    return len(lost), sum(v for r in lost for k, v in r.items() if k.startswith("train/") and k.endswith("_time"))


class Goodput:
    """The clock of one session; ``with goodput.phase("step"):`` around each part of the loop."""

    def __init__(self) -> None:
        self.start = time.time()
        self.session = dict.fromkeys(PHASES, 0.0)
        self.previous = {**dict.fromkeys(PHASES, 0.0), "wall": 0.0, "steps": 0, "recomputed_steps": 0, "sessions": 0}
        self.steps = 0

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        t0 = time.time()
        try:
            yield
        finally:
            self.session[name] += time.time() - t0 - _SPANS.within(t0, time.time())
            self.steps += name == "step"

    def resumed(self, totals: dict | None, lost: tuple[int, float] | None) -> None:
        """Continue the totals a checkpoint carried, adding the steps a killed session did after it."""
        self.previous.update(totals or {})
        steps, seconds = lost or (0, 0.0)
        self.previous["recomputed_steps"] += steps
        self.previous["recomputed"] += seconds
        self.previous["wall"] += seconds

    def totals(self) -> dict:
        """Every session's seconds and counts up to now (JSON; what a checkpoint carries)."""
        now = time.time()
        out = {name: self.previous[name] + self.session[name] for name in PHASES}
        out["compile"] += _SPANS.within(self.start, now)
        out.update(wall=self.previous["wall"] + now - self.start, steps=self.previous["steps"] + self.steps,
                   recomputed_steps=self.previous["recomputed_steps"], sessions=self.previous["sessions"] + 1)
        return out

    def report(self) -> tuple[dict, str]:
        """(the ``goodput/*`` metrics, the summary line) of the run so far."""
        t = self.totals()
        other = max(0.0, t["wall"] - sum(t[name] for name in PHASES))
        productive = t["step"] / t["wall"] if t["wall"] > 0 else 0.0
        metrics = {f"{name}_time": t[name] for name in PHASES}
        metrics.update(wall_time=t["wall"], other_time=other, productive=productive, steps=t["steps"],
                       recomputed_steps=t["recomputed_steps"], sessions=t["sessions"])
        line = (f"goodput: {100 * productive:.1f}% productive of {t['wall']:.1f} s over {t['sessions']} session(s) "
                f"(steps {t['step']:.1f} s, compile {t['compile']:.1f} s, checkpoints {t['checkpoint']:.1f} s save + "
                f"{t['restore']:.1f} s restore, validation {t['validation']:.1f} s, recomputed "
                f"{t['recomputed_steps']} steps / {t['recomputed']:.1f} s, other {other:.1f} s)")
        return metrics, line
