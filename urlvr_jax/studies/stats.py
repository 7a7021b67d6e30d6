"""Statistics over seeds: t-intervals of means, binomial standard errors, per-step bands, the collapse step,
and the ``--seeds`` list every study takes.

Shared by the CPU default's seed study (:mod:`urlvr_jax.studies.seeds`) and the paper's studies
(:mod:`urlvr_jax.studies.report`).
"""

from __future__ import annotations

import math
import os
from typing import Mapping, Sequence

import numpy as np

Records = Sequence[Mapping[str, float]]


def t_interval(values: Sequence[float], confidence: float = 0.95) -> dict:
    """Mean and two-sided ``confidence`` t-interval of the mean over ``values`` (lo/hi None below 2 values)."""
    from scipy import stats

    x = np.asarray([v for v in values if v is not None], float)
    if x.size == 0:
        return {"mean": None, "lo": None, "hi": None, "n": 0}
    mean = float(x.mean())
    if x.size < 2:
        return {"mean": mean, "lo": None, "hi": None, "n": 1}
    half = float(stats.t.ppf(0.5 + confidence / 2, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
    return {"mean": mean, "lo": mean - half, "hi": mean + half, "n": int(x.size)}


def binomial_se(p: float, n: int) -> float:
    """Standard error of a success rate ``p`` estimated from ``n`` Bernoulli samples; ``p`` is kept at least
    half a sample away from 0 and 1, so a rate measured as 0 or 1 still has a (small) nonzero error."""
    p = min(max(p, 0.5 / n), 1 - 0.5 / n)
    return math.sqrt(p * (1 - p) / n)


def collapse_step(records: Records, threshold: float) -> int | None:
    """The first step whose training reward accuracy is below ``threshold`` (the loop's rule), or None."""
    return next((int(r["step"]) for r in records
                 if "train/reward_accuracy" in r and r["train/reward_accuracy"] < threshold), None)


def series(records: Records, key: str) -> dict[int, float]:
    """``{step: value}`` of the finite values of ``key``."""
    return {int(r["step"]): float(r[key]) for r in records if key in r and np.isfinite(r[key])}


def band(runs: Sequence[Records], key: str) -> dict:
    """Per step (the steps every run logged): mean and 95% t-interval of ``key`` over the runs."""
    per_run = [series(records, key) for records in runs]
    steps = sorted(set.intersection(*(set(s) for s in per_run))) if per_run else []
    stats = [t_interval([s[step] for s in per_run]) for step in steps]
    return {"steps": steps, **{f: [s[f] for s in stats] for f in ("mean", "lo", "hi")}, "n": len(per_run)}


def replace_section(path: str, section: str, begin: str, end: str, heading: str) -> None:
    """Writes ``section`` (which starts with ``begin`` and ends with ``end``) into the markdown page ``path`` in
    place of its previous copy, or appends it; the rest of the page (hand-written text) is kept. A new page
    starts with ``heading``."""
    text = open(path).read() if os.path.exists(path) else heading + "\n\n"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + section + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def parse_seeds(text: str) -> tuple[int, ...]:
    """``--seeds 0,1,2`` -> (0, 1, 2); not distinct non-negative integers: ValueError naming the flag."""
    try:
        seeds = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        seeds = ()
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds {text!r}: give distinct non-negative integers separated by commas, e.g. 0,1,2")
    return seeds
