"""Preemption through the command line: SIGTERM mid-run saves the step it reached and exits 75 with one line, the same
command resumes bit for bit; SIGKILL while an asynchronous checkpoint write is in flight leaves the previous checkpoint
the one that restores; every session ends with its goodput record and summary line.

Subprocesses of ``python -m urlvr_jax.train`` on one CPU device sharing a compilation cache (as tests/rl/test_loop.py).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time

import numpy as np
from fault_fixtures import checkpoint_steps
from loop_fixtures import REPO, run_cli, train_cmd, without_times
from safetensors.numpy import load_file

from urlvr_jax.utils.metrics_log import read_metrics
from urlvr_jax.utils.preemption import PREEMPTED_EXIT_CODE

STEPS = 8
# tiny_gt with the seeded random reward (every step updates) and no periodic checkpoint: SIGTERM alone saves one.
RUN = ("reward.name=random", "rollout.max_new_tokens=4", "rollout.max_prompt_len=8", "data.val_size=8", "val.every=0",
       "train.checkpoint_every=100", f"train.steps={STEPS}", "train.export_hf=true", "train.progress=false")
GOODPUT_LINE = re.compile(r"^goodput: \d+\.\d% productive of \d+\.\d s over (\d+) session\(s\) \(steps \d+\.\d s, "
                          r"compile \d+\.\d s, checkpoints \d+\.\d s save \+ \d+\.\d s restore, validation \d+\.\d s, "
                          r"recomputed (\d+) steps / \d+\.\d s, other \d+\.\d s\)$", re.M)

# tiny_gt, with orbax's commit of checkpoint 3 (the rename of its temporary directory, after every file is written)
# held back for ten minutes: the run is SIGKILLed while that write is in flight.
SLOW_WRITE_CONFIG = '''
import asyncio
import sys

from orbax.checkpoint._src.path import atomicity

from urlvr_jax.utils.config import load_config

_finalize = atomicity.AtomicRenameTemporaryPath.finalize


async def _slow_finalize(self):
    if self._final_path.name == "3":
        print("test: checkpoint 3 written, its commit held back", file=sys.stderr, flush=True)
        await asyncio.sleep(600)
    return await _finalize(self)


atomicity.AtomicRenameTemporaryPath.finalize = _slow_finalize


def get_config():
    return load_config("tiny_gt")
'''


def _records(run_dir) -> list[str]:
    return [json.dumps(r, sort_keys=True) for r in without_times(read_metrics(run_dir))]


def _goodput(run_dir) -> list[dict]:
    return [r for r in read_metrics(run_dir) if "goodput/wall_time" in r]


def _wait_for_line(proc: subprocess.Popen, path: str, pattern: str, timeout: float = 240.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the run ended (rc {proc.returncode}) before {pattern!r} appeared in {path}"
        if os.path.exists(path) and pattern in open(path).read():
            return
        time.sleep(0.02)
    raise TimeoutError(f"no {pattern!r} in {path} after {timeout} s")


def test_sigterm_saves_the_step_reached_exits_75_and_resumes_bit_for_bit(tmp_path, env):
    full, stopped = str(tmp_path / "full"), str(tmp_path / "stopped")
    result = run_cli(train_cmd("tiny_gt", *RUN, f"run_dir={full}"), env)
    assert result.returncode == 0, result.stderr[-3000:]
    (line,) = GOODPUT_LINE.findall(result.stdout)
    assert line == ("1", "0"), result.stdout  # one session, nothing recomputed
    (record,) = _goodput(full)
    assert record["step"] == STEPS and record["goodput/steps"] == STEPS and record["goodput/sessions"] == 1
    parts = ("step", "compile", "checkpoint", "restore", "validation", "recomputed", "other")
    assert abs(sum(record[f"goodput/{p}_time"] for p in parts) - record["goodput/wall_time"]) < 1e-6
    assert 0 < record["goodput/productive"] < 1 and record["goodput/compile_time"] > 0

    cmd = train_cmd("tiny_gt", *RUN, f"run_dir={stopped}")
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_line(proc, os.path.join(stopped, "metrics.jsonl"), '"train/loss"')  # step 1 is done
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == PREEMPTED_EXIT_CODE, err[-3000:]
    (step,) = checkpoint_steps(stopped)
    assert 1 <= step < STEPS, f"stopped at {step}: the signal came too late to test resuming"
    assert err.strip().splitlines()[-1] == (f"preempted at step {step}: checkpoint saved to {stopped}/checkpoints/"
                                            f"{step}; run the same command to resume"), err[-3000:]
    assert "Traceback" not in err and "received SIGTERM" in err
    train_steps = [r["step"] for r in read_metrics(stopped) if "train/loss" in r]
    assert train_steps == list(range(1, step + 1)), "the metrics of every step up to the checkpoint are flushed"
    assert GOODPUT_LINE.findall(out) == [("1", "0")] and not os.path.exists(os.path.join(stopped, "hf"))

    result = run_cli(cmd, env)  # the same command resumes
    assert result.returncode == 0, result.stderr[-3000:]
    assert _records(stopped) == _records(full), f"stopped at step {step}"
    first, last = _goodput(stopped)
    assert (first["step"], last["step"], last["goodput/sessions"], last["goodput/steps"]) == (step, STEPS, 2, STEPS)
    assert last["goodput/recomputed_steps"] == 0 and last["goodput/wall_time"] > first["goodput/wall_time"]
    assert last["goodput/step_time"] > first["goodput/step_time"], "the totals add up across sessions"
    assert GOODPUT_LINE.findall(result.stdout) == [("2", "0")]
    resumed, reference = (load_file(os.path.join(d, "hf", "model.safetensors")) for d in (stopped, full))
    assert resumed.keys() == reference.keys()
    assert all(np.array_equal(resumed[k], v) for k, v in reference.items()), f"params differ (stopped at step {step})"


def test_sigkill_during_an_async_checkpoint_write_restores_the_previous_one(tmp_path, env):
    config = tmp_path / "slow_write.py"
    config.write_text(SLOW_WRITE_CONFIG)
    run_dir = str(tmp_path / "run")
    every_step = ("reward.name=random", "rollout.max_new_tokens=4", "rollout.max_prompt_len=8", "data.val_size=8",
                  "val.every=0", "train.checkpoint_every=1", "train.steps=5", "train.progress=false")
    log = tmp_path / "killed.log"
    with open(log, "w") as stderr:
        proc = subprocess.Popen(train_cmd(str(config), *every_step, f"run_dir={run_dir}"), cwd=REPO, env=env,
                                stdout=subprocess.DEVNULL, stderr=stderr)
        try:
            _wait_for_line(proc, str(log), "test: checkpoint 3 written, its commit held back")
            # step 4 runs meanwhile and is logged, then its save waits for the write of 3
            _wait_for_line(proc, os.path.join(run_dir, "metrics.jsonl"), '{"step": 4, "train/')
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert checkpoint_steps(run_dir) == [1, 2]
    leftovers = [d for d in os.listdir(os.path.join(run_dir, "checkpoints")) if d.startswith("3.")]
    assert leftovers, "the half-done write of step 3 left its temporary directory"

    result = run_cli(train_cmd("tiny_gt", *every_step, f"run_dir={run_dir}"), env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "skipping" not in result.stderr, result.stderr[-3000:]  # step 2 restored at the first try
    assert checkpoint_steps(run_dir) == [3, 4, 5]  # keep_checkpoints=3
    assert not [d for d in os.listdir(os.path.join(run_dir, "checkpoints")) if d.startswith("3.")]
    assert [r["step"] for r in read_metrics(run_dir) if "train/loss" in r] == [1, 2, 3, 4, 5]
    (record,) = _goodput(run_dir)  # the killed session logged none; steps 3 and 4 were logged, then redone
    assert record["goodput/recomputed_steps"] == 2 and record["goodput/recomputed_time"] > 0
    assert record["goodput/sessions"] == 2 and record["goodput/steps"] == 5
