"""Fault injection through the command line: each test breaks a tiny_gt run one way and checks what the run prints
and what it leaves on disk (the table in the README's reliability section names these tests).

The runs are subprocesses on one CPU device sharing a persistent compilation cache (see tests/rl/test_loop.py).
"""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import subprocess
import time

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest
from fault_fixtures import checkpoint_steps
from loop_fixtures import NAN_REWARD_CONFIG, REPO, run_cli, train_cmd

from urlvr_jax.utils import run_lock
from urlvr_jax.utils.metrics_log import read_metrics, read_tensorboard

# tiny_gt from a random init with the random (seeded per step) reward: every step really updates.
FAST = ("reward.name=random", "rollout.max_new_tokens=4", "rollout.max_prompt_len=8", "data.val_size=8",
        "val.every=0", "train.checkpoint_every=1")

# Config files that load tiny_gt and inject a fault when the run imports them.
DISK_FULL_CONFIG = '''
import errno
import os

import orbax.checkpoint as ocp

from urlvr_jax.utils.config import load_config

_save = ocp.CheckpointManager.save


def _save_until_the_disk_is_full(self, step, *args, **kwargs):
    if step >= 3:  # the write of checkpoint 3 finds the disk full
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    return _save(self, step, *args, **kwargs)


ocp.CheckpointManager.save = _save_until_the_disk_is_full


def get_config():
    return load_config("tiny_gt")
'''


def _saved_params(run_dir, step: int) -> list[np.ndarray]:
    """The params arrays of checkpoint ``step`` as saved (read by orbax without a target)."""
    tree = ocp.PyTreeCheckpointer().restore(os.path.join(run_dir, "checkpoints", str(step), "state"))
    return [np.asarray(x) for x in jax.tree.leaves(tree["train"]["params"])]


def _one_error_line(result) -> str:
    """The run failed with a single ``error:`` line and no traceback; returns that line."""
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: "), result.stderr[-3000:]
    return last


def _train_steps(run_dir) -> list[int]:
    return [r["step"] for r in read_metrics(run_dir) if "train/loss" in r]


@pytest.mark.parametrize("override, message", [
    ("optim.lr=nan", "error: config optim.lr=nan must be a finite number > 0"),
    ("rollout.n=0", "error: config rollout.n=0 must be an integer >= 1"),
    ("run_dir=FILE", "error: config run_dir='FILE' is a file, not a directory; choose another run_dir"),
])
def test_bad_input_is_one_line_naming_the_key(tmp_path, env, override, message):
    file = tmp_path / "a_file"
    file.write_text("not a directory")
    override, message = override.replace("FILE", str(file)), message.replace("FILE", str(file))
    result = run_cli(train_cmd("tiny_gt", f"run_dir={tmp_path / 'run'}", override), env)
    assert _one_error_line(result) == message
    assert not (tmp_path / "run").exists()  # refused before anything was written
    if not override.startswith("optim.lr"):
        return
    debug = run_cli(train_cmd("tiny_gt", f"run_dir={tmp_path / 'run'}", override, "--debug"), env)
    assert debug.returncode == 1 and "Traceback" in debug.stderr and message[len("error: "):] in debug.stderr


@pytest.mark.parametrize("fault", ["optim.lr=1e30", "reward.name=test_nan_reward"])
def test_bad_updates_are_rolled_back_and_never_saved(tmp_path, env, fault):
    config = tmp_path / "nan_reward.py"
    config.write_text(NAN_REWARD_CONFIG)
    run_dir = str(tmp_path / "run")
    result = run_cli(train_cmd(str(config), *FAST, fault, "train.steps=6", "train.max_nonfinite_steps=2",
                               f"run_dir={run_dir}"), env)
    last = _one_error_line(result)
    assert last.startswith("error: step 3: non-finite") and "train.max_nonfinite_steps=2" in last, last
    assert result.stderr.count("those updates were rolled back") == 3
    train = [r for r in read_metrics(run_dir) if "train/loss" in r]
    assert [r["step"] for r in train] == [1, 2, 3]
    assert all(r["train/rolled_back_updates"] == 1.0 for r in train)
    assert checkpoint_steps(run_dir) == [1, 2]  # step 3 stopped the run before its checkpoint
    first, second = _saved_params(run_dir, 1), _saved_params(run_dir, 2)
    assert all(np.isfinite(x).all() for x in first)
    assert np.sqrt(sum(float(np.square(x.astype(np.float64)).sum()) for x in first)) < 1e6
    for a, b in zip(first, second):  # both are the initial params: every update was rolled back
        np.testing.assert_array_equal(a, b)


def test_bit_flipped_checkpoint_is_moved_aside_and_the_previous_one_resumes(tmp_path, env):
    run_dir = str(tmp_path / "run")
    result = run_cli(train_cmd("tiny_gt", *FAST, "train.steps=3", f"run_dir={run_dir}"), env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert checkpoint_steps(run_dir) == [1, 2, 3]
    step_dir = os.path.join(run_dir, "checkpoints", "3", "state")
    files = [os.path.join(r, f) for r, _, fs in os.walk(step_dir) for f in fs if os.sep + "d" in r]
    target = max(files, key=os.path.getsize)
    size = os.path.getsize(target)
    with open(target, "r+b") as f:  # 64 bytes inverted in the middle of the largest array file
        f.seek(size // 2)
        chunk = f.read(64)
        f.seek(size // 2)
        f.write(bytes(b ^ 0xFF for b in chunk))
    assert os.path.getsize(target) == size

    result = run_cli(train_cmd("tiny_gt", *FAST, "train.steps=4", f"run_dir={run_dir}"), env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "skipping checkpoint step 3" in result.stderr and "checksum mismatch" in result.stderr, result.stderr
    assert "moved unrestorable checkpoint step 3" in result.stderr
    assert len(os.listdir(os.path.join(run_dir, "checkpoints", "_corrupt"))) == 1
    assert checkpoint_steps(run_dir) == [2, 3, 4]
    assert _train_steps(run_dir) == [1, 2, 3, 4]  # step 3 was redone from checkpoint 2, logged once


def test_killed_before_the_first_checkpoint_restarts_clean(tmp_path, env):
    run_dir = str(tmp_path / "run")
    cmd = train_cmd("tiny_gt", *FAST, "train.steps=2", "train.checkpoint_every=100", f"run_dir={run_dir}")
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    metrics = os.path.join(run_dir, "metrics.jsonl")
    try:
        deadline = time.monotonic() + 240
        while not (os.path.exists(metrics) and '"train/loss"' in open(metrics).read()):
            assert proc.poll() is None and time.monotonic() < deadline, "the run ended before step 1"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert checkpoint_steps(run_dir) == []
    assert json.load(open(os.path.join(run_dir, run_lock.LOCK_FILE)))["pid"] == proc.pid  # left behind

    result = run_cli(cmd, env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "taking over the stale lock" in result.stderr and f"pid {proc.pid}" in result.stderr
    assert not os.path.exists(os.path.join(run_dir, run_lock.LOCK_FILE))  # released at the end
    records = read_metrics(run_dir)
    assert [r["step"] for r in records] == [0, 1, 2, 2, 2]  # val 0, train 1, train 2, val 2, goodput: step 0 once
    assert records[-1]["goodput/recomputed_steps"] == 1  # the killed run's step 1, logged and done again
    events = read_tensorboard(os.path.join(run_dir, "tb"))
    assert len(events) == len(set((tag, step) for tag, step, _ in events)), "a step twice in TensorBoard"
    assert {step for _, step, _ in events} == {0, 1, 2}


def test_second_run_in_a_busy_run_dir_is_refused(tmp_path, env):
    run_dir = str(tmp_path / "run")
    os.makedirs(run_dir)
    holder = run_lock.acquire(run_dir)  # this test process is the run in progress
    try:
        result = run_cli(train_cmd("tiny_gt", *FAST, "train.steps=1", f"run_dir={run_dir}"), env)
    finally:
        run_lock.release(holder)
    last = _one_error_line(result)
    assert last.startswith(f"error: run_dir {run_dir} is in use by pid {os.getpid()} on host "), last
    assert sorted(os.listdir(run_dir)) == [], "the refused run wrote into the run_dir"


def test_disk_full_names_the_path_and_keeps_the_last_checkpoint(tmp_path, env):
    config = tmp_path / "disk_full.py"
    config.write_text(DISK_FULL_CONFIG)
    run_dir = str(tmp_path / "run")
    result = run_cli(train_cmd(str(config), *FAST, "train.steps=4", f"run_dir={run_dir}"), env)
    last = _one_error_line(result)
    assert last == (f"error: [Errno {errno.ENOSPC}] cannot write checkpoint step 3 to {run_dir}/checkpoints/3: "
                    f"No space left on device (the previous checkpoints are kept)"), last
    # no tracebacks from writer threads (the absl lines an installed CUDA plugin logs at start-up aside)
    lines = [line for line in result.stderr.strip().splitlines()
             if not re.match(r"WARNING: All log messages before absl|[IWE]\d{4} ", line)]
    assert len(lines) <= 3, result.stderr
    assert checkpoint_steps(run_dir) == [1, 2]
    resumed = run_cli(train_cmd("tiny_gt", *FAST, "train.steps=4", f"run_dir={run_dir}"), env)
    assert resumed.returncode == 0 and "skipping" not in resumed.stderr, resumed.stderr[-3000:]
    assert _train_steps(run_dir) == [1, 2, 3, 4]


def test_export_refuses_non_finite_weights(tmp_path):
    from urlvr_jax.rl import setup

    params = {"embed": np.zeros((4, 2), np.float32), "layers": {"w": np.array([1.0, np.nan], np.float32)}}
    refused = r"refusing to export non-finite weights to .*hf: params\['layers'\]\['w'\]"
    with pytest.raises(FloatingPointError, match=refused):
        setup.export_run(str(tmp_path), None, params, None)
    assert not (tmp_path / "hf").exists()


def test_a_directory_without_a_tokenizer_is_named(tmp_path):
    from urlvr_jax.rl.loop import URLVRRun
    from urlvr_jax.utils.config import apply_overrides, load_config

    (tmp_path / "notes.txt").write_text("not a model")
    config = apply_overrides(load_config("tiny_gt"), ["tokenizer.kind=hf", f"tokenizer.path={tmp_path}"])
    with pytest.raises(ValueError, match=rf"config tokenizer.path='{tmp_path}' holds no tokenizer \(none of "
                                         r"tokenizer.json, .*\); name a Hugging Face model directory"):
        URLVRRun(config)
