"""The README's main job: rise-then-fall and the Model Collapse Step on a 2-core CPU.

    python -m urlvr_jax.studies run cpu_default [key=value ...]
    python -m urlvr_jax.studies report cpu_default [key=value ...]    # the figure and summary again, from the runs

1. Warm start a tiny transformer to an imperfect prior (``urlvr_jax.toy.warm_start``).
2. From that prior, run majority-vote URLVR and ground-truth RL with the same settings.
3. Write ``runs/cpu_default/{curves.png, summary.json}`` and each arm's ``metrics.jsonl``, and print the
   Model Collapse Step and whether ground-truth accuracy rose and then fell under majority voting.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from types import SimpleNamespace

import numpy as np

from urlvr_jax.studies.stats import collapse_step
from urlvr_jax.toy.warm_start import arm_config, make_prior
from urlvr_jax.utils import multihost
from urlvr_jax.utils.config import parse_cli
from urlvr_jax.utils.metrics_log import read_metrics
from urlvr_jax.utils.plots import plot_curves

LABELS = {"majority_vote": "majority vote", "ground_truth": "ground truth"}


def rise_then_fall(records: list[dict], key: str = "val/avg@k") -> dict:
    """Start, peak and final value of ``key``; it rose then fell if the peak beats both ends by a margin."""
    points = [(r["step"], r[key]) for r in records if key in r and np.isfinite(r[key])]
    if len(points) < 3:
        return {"rose_then_fell": False, "points": len(points)}
    steps, values = zip(*points)
    peak = int(np.argmax(values))
    start, top, end = values[0], values[peak], values[-1]
    margin = 0.05
    return {"start": start, "peak": top, "peak_step": steps[peak], "final": end, "final_step": steps[-1],
            "rose_then_fell": bool(top >= start + margin and end <= top - margin)}


def arms_of(config) -> list[str]:
    return [a.strip() for a in config.experiment.arms.split(",") if a.strip()]


def parse(argv: list[str] | None, verb: str):
    """The config of ``[--config NAME] [key=value ...]`` (``--help``: the usage)."""
    parser = argparse.ArgumentParser(prog=f"python -m urlvr_jax.studies {verb} cpu_default",
                                     description=__doc__.split("\n")[0], epilog="then key=value config overrides")
    _, rest = parser.parse_known_args(argv)
    config, extra = parse_cli(rest, default_config="cpu_default")
    if extra:
        raise SystemExit(f"unknown flags {extra}; overrides are written key=value")
    return config


def main(argv: list[str] | None = None) -> int:
    """``run cpu_default``: the prior, then every arm, then the report."""
    config = parse(argv, "run")
    from urlvr_jax.rl.loop import train

    t0 = time.time()
    os.makedirs(config.run_dir, exist_ok=True)
    prior = multihost.primary_first(lambda: make_prior(config, os.path.join(config.run_dir, "prior")))
    multihost.primary_only(lambda: print(f"prior ready in {time.time() - t0:.0f}s: {prior}"))
    results = {}
    for arm in arms_of(config):
        multihost.primary_only(lambda: print(f"--- {arm} ---"))
        steps = config.experiment.gt_steps if arm == "ground_truth" else 0
        results[arm] = train(arm_config(config, arm, prior, steps))
    multihost.primary_only(lambda: report(config, results, time.time() - t0))
    return 0


def report_main(argv: list[str] | None = None) -> int:
    """``report cpu_default``: the figure and summary again from the arms' ``metrics.jsonl`` under ``run_dir``."""
    config = parse(argv, "report")
    results = {}
    for arm in arms_of(config):
        run_dir = os.path.join(config.run_dir, arm)
        if not os.path.isfile(os.path.join(run_dir, "metrics.jsonl")):
            raise SystemExit(f"no run of arm {arm} in {run_dir}: run `python -m urlvr_jax.studies run cpu_default` "
                             "first (with the same overrides)")
        collapse = collapse_step(read_metrics(run_dir), config.train.collapse_threshold)
        results[arm] = SimpleNamespace(run_dir=run_dir, collapse_step=collapse)
    report(config, results, None)
    return 0


def report(config, results: dict, seconds: float | None) -> None:
    """The figure and summary of the arms' runs (process 0 writes them; ``seconds``: the run's, None from a report)."""
    records = {LABELS.get(arm, arm): read_metrics(os.path.join(result.run_dir, "metrics.jsonl"))
               for arm, result in results.items()}
    mv = results.get("majority_vote")
    collapse = mv.collapse_step if mv else None
    panels = [("ground-truth accuracy (validation avg@k)", ["val/avg@k"]),
              ("training reward: proxy (MV) / ground truth", ["train/proxy_reward", "train/ground_truth_reward"]),
              ("reward accuracy", ["train/reward_accuracy"]), ("majority ratio", ["train/majority_ratio"])]
    figure = plot_curves(None, os.path.join(config.run_dir, "curves.png"), panels, runs=records,
                         collapse_step={"majority vote": collapse} if collapse else None,
                         title="CPU default: majority-vote URLVR vs ground-truth RL")
    summary = {"collapse_step": collapse, "seconds": None if seconds is None else round(seconds, 1), "figure": figure}
    for arm, label in ((a, LABELS.get(a, a)) for a in results):
        summary[arm] = rise_then_fall(records[label])
        summary[arm]["final_proxy_reward"] = next((r["train/proxy_reward"] for r in reversed(records[label])
                                                   if "train/proxy_reward" in r), None)
    with open(os.path.join(config.run_dir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    print(json.dumps(summary, indent=2))
    for arm, r in ((a, summary[a]) for a in results if "peak" in summary[a]):
        print(f"this run, {LABELS.get(arm, arm)}: validation avg@k {r['start']:.3f} at the start, peak {r['peak']:.3f} "
              f"(step {r['peak_step']}), {r['final']:.3f} at step {r['final_step']}")
    print("(one seed; over seeds, with intervals: python -m urlvr_jax.studies run seeds, docs/results.md)")
    if mv:
        print(f"Model Collapse Step (majority vote, reward accuracy < {config.train.collapse_threshold:.0%}): "
              f"{collapse if collapse is not None else 'not reached'}")
