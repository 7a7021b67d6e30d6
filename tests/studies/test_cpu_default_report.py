"""The main job's closing report: one run's numbers, labelled as such, and the collapse step."""

from __future__ import annotations

import json
import os
from types import SimpleNamespace

from urlvr_jax.experiments import cpu_default
from urlvr_jax.utils.config import apply_overrides, load_config
from urlvr_jax.utils.metrics_log import MetricsLogger


def test_report_prints_this_runs_numbers_and_points_to_the_seeds(tmp_path, capsys):
    curves = {"majority_vote": [0.30, 0.42, 0.05], "ground_truth": [0.30, 0.45, 0.50]}
    results = {}
    for arm, values in curves.items():
        run_dir = str(tmp_path / arm)
        with MetricsLogger(run_dir, use_tensorboard=False, show_progress=False) as log:
            for i, v in enumerate(values):
                log.log(10 * i, {"val/avg@k": v, "train/proxy_reward": 0.5 + 0.2 * i, "train/ground_truth_reward": v,
                                  "train/reward_accuracy": 0.5, "train/majority_ratio": 0.5}, prefix=None)
        results[arm] = SimpleNamespace(run_dir=run_dir, collapse_step=17 if arm == "majority_vote" else None)
    config = apply_overrides(load_config("cpu_default"), [f"run_dir={tmp_path}"])
    cpu_default.report(config, results, seconds=1.0)
    out = capsys.readouterr().out
    assert "this run, majority vote: validation avg@k 0.300 at the start, peak 0.420 (step 10), 0.050 at step 20" in out
    assert "this run, ground truth: validation avg@k 0.300 at the start, peak 0.500 (step 20)" in out
    assert "python -m urlvr_jax.experiments.seeds" in out
    assert out.rstrip().endswith("Model Collapse Step (majority vote, reward accuracy < 1%): 17")
    summary = json.load(open(os.path.join(tmp_path, "summary.json")))
    assert summary["collapse_step"] == 17 and summary["majority_vote"]["rose_then_fell"]
