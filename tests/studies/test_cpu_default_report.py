"""The main job's closing report: one run's numbers, labelled as such, and the collapse step."""

from __future__ import annotations

import json
import os
from types import SimpleNamespace

import pytest

from urlvr_jax.studies import cli, cpu_default
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
    assert "python -m urlvr_jax.studies run seeds" in out
    assert out.rstrip().endswith("Model Collapse Step (majority vote, reward accuracy < 1%): 17")
    summary = json.load(open(os.path.join(tmp_path, "summary.json")))
    assert summary["collapse_step"] == 17 and summary["majority_vote"]["rose_then_fell"]


def test_report_verb_reads_the_runs_again(tmp_path, capsys):
    """``python -m urlvr_jax.studies report cpu_default``: the same summary from the arms' metrics on disk."""
    for arm, accuracy in (("majority_vote", [0.5, 0.4, 0.005]), ("ground_truth", [0.5, 0.6, 0.7])):
        with MetricsLogger(str(tmp_path / arm), use_tensorboard=False, show_progress=False) as log:
            for i, a in enumerate(accuracy):
                log.log(10 * i, {"val/avg@k": 0.3 + 0.1 * i, "train/reward_accuracy": a, "train/proxy_reward": 0.5,
                                 "train/ground_truth_reward": 0.5, "train/majority_ratio": 0.5}, prefix=None)
    assert cli.main(["report", "cpu_default", f"run_dir={tmp_path}"]) == 0
    assert capsys.readouterr().out.rstrip().endswith("Model Collapse Step (majority vote, reward accuracy < 1%): 20")
    summary = json.load(open(os.path.join(tmp_path, "summary.json")))
    assert summary["collapse_step"] == 20 and summary["seconds"] is None and (tmp_path / "curves.png").exists()
    with pytest.raises(SystemExit, match="no run of arm majority_vote"):
        cli.main(["report", "cpu_default", f"run_dir={tmp_path / 'none'}"])
