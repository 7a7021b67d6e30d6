"""``urlvr warm-start``: a toy prior written by the console script's command, reused, and trained from."""

from __future__ import annotations

import json
import os
import subprocess
import sys

TINY = ["data.val_size=8", "warm_start.steps=3", "warm_start.pool_size=20"]


def urlvr(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    return subprocess.run([sys.executable, "-m", "urlvr_jax.cli", *args], capture_output=True, text=True, env=env,
                          timeout=600)


def test_warm_start_writes_a_prior_that_train_starts_from(tmp_path):
    prior = str(tmp_path / "prior")
    first = urlvr("warm-start", "--out", prior, *TINY)
    assert first.returncode == 0, first.stderr[-2000:]
    assert os.path.isfile(os.path.join(prior, "config.json")) and not os.path.exists(prior + ".partial")
    line = first.stdout.strip().splitlines()[-1]
    assert line.startswith(f"prior written: {prior}; train from it with: ")
    overrides = line.split("train from it with: ", 1)[1].split()
    again = urlvr("warm-start", "--out", prior, *TINY)
    assert again.returncode == 0 and again.stdout.strip().splitlines()[-1].startswith("prior reused:")

    run_dir = str(tmp_path / "run")
    train = urlvr("train", "--config", "cpu_default", *overrides, "data.val_size=8", "train.steps=1",
                  "train.progress=false", "val.every=0", f"run_dir={run_dir}")
    assert train.returncode == 0, train.stderr[-2000:]
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        steps = [json.loads(line) for line in f if '"train/' in line]
    assert steps and steps[-1]["step"] == 1


def test_a_config_without_a_warm_start_is_one_line(tmp_path):
    out = urlvr("warm-start", "--out", str(tmp_path / "prior"), "--config", "tiny_gt")
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == [
        "error: the config has no warm_start section (a toy config such as cpu_default or toy_studies has)"]
    assert not os.path.exists(tmp_path / "prior")
