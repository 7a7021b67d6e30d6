"""A pod on one machine: the train CLI in 2 processes × 4 CPU devices (``jax.distributed`` over gloo, started by
the project's own ``URLVR_DISTRIBUTED`` variables), killed mid-run and resumed, equals one process with 8
devices on the same data:2,fsdp:2,tensor:2 mesh, and every step is logged once. SIGTERM stops both processes at one
step with one checkpoint (exit 75) and the same command resumes; a SIGKILLed process is named by the survivor."""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from loop_fixtures import REPO, cli_env, train_cmd, without_times

from urlvr_jax.utils.distributed import PEER_LOST_EXIT_CODE
from urlvr_jax.utils.metrics_log import read_metrics, read_tensorboard
from urlvr_jax.utils.preemption import PREEMPTED_EXIT_CODE

STEPS = 4
OVERRIDES = ("mesh=data:2,fsdp:2,tensor:2", f"train.steps={STEPS}", "train.checkpoint_every=1",
             "reward.name=random")  # a seeded random reward: non-zero advantages, so every step updates


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _launch(run_dir, processes: int, devices: int, cache_dir: str, *extra: str, **env_vars) -> list[subprocess.Popen]:
    port, procs = _free_port(), []
    for i in range(processes):
        env = cli_env(cache_dir)
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
        if processes > 1:
            env.update(URLVR_DISTRIBUTED="1", URLVR_COORDINATOR=f"localhost:{port}",
                       URLVR_NUM_PROCESSES=str(processes), URLVR_PROCESS_ID=str(i), **env_vars)
        log = open(f"{run_dir}.{i}.log", "w")
        procs.append(subprocess.Popen(train_cmd("tiny_gt", f"run_dir={run_dir}", *OVERRIDES, *extra), cwd=REPO,
                                      env=env, stdout=log, stderr=subprocess.STDOUT))
    return procs


def _wait(procs, run_dir, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    for i, p in enumerate(procs):
        rc = p.wait(timeout=max(deadline - time.monotonic(), 1))
        assert rc == 0, f"process {i} exited {rc}:\n" + open(f"{run_dir}.{i}.log").read()[-3000:]


def _checkpoints(run_dir) -> list[int]:
    root = os.path.join(run_dir, "checkpoints")
    return sorted(int(d) for d in os.listdir(root) if d.isdigit()) if os.path.isdir(root) else []


@pytest.fixture(scope="module")
def xla_cache(tmp_path_factory) -> str:
    """The compilation cache the module's runs share."""
    return str(tmp_path_factory.mktemp("xla_cache"))


@pytest.fixture(scope="module")
def one_process(tmp_path_factory, xla_cache):
    """(the 1 process × 8 devices reference run, the compilation cache)."""
    one = str(tmp_path_factory.mktemp("reference") / "one")
    _wait(_launch(one, 1, 8, xla_cache), one)
    return one, xla_cache


def _assert_equal_metrics(one, two) -> None:
    expected, got = without_times(read_metrics(one)), without_times(read_metrics(two))
    train_steps = [r["step"] for r in got if any(k.startswith("train/") for k in r)]
    assert train_steps == list(range(1, STEPS + 1)), f"each step logged once, got {train_steps}"
    assert [sorted(r) for r in got] == [sorted(r) for r in expected]
    for want, have in zip(expected, got):
        for key, value in want.items():
            if isinstance(value, float) and math.isnan(value):
                assert math.isnan(have[key]), (want["step"], key)
            else:
                assert abs(have[key] - value) <= 1e-6 * max(1.0, abs(value)), (want["step"], key, value, have[key])
    assert any(r.get("train/grad_norm", 0) > 0 for r in got), "the runs must actually update"


def _step_logged(run_dir, procs, step: int, timeout: float = 600) -> None:
    path, deadline = os.path.join(run_dir, "metrics.jsonl"), time.monotonic() + timeout
    while not (os.path.exists(path) and f'{{"step": {step}, "train/' in open(path).read()):
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs), "no train step logged"
        time.sleep(0.05)


def test_two_processes_killed_and_resumed_equal_one_process(tmp_path, one_process):
    one, cache = one_process
    two = str(tmp_path / "two")

    procs = _launch(two, 2, 4, cache)
    deadline = time.monotonic() + 600
    while not _checkpoints(two) and time.monotonic() < deadline and all(p.poll() is None for p in procs):
        time.sleep(0.05)
    for p in procs:  # a pod losing its hosts right after the first checkpoint
        p.send_signal(signal.SIGKILL)
        p.wait()
    killed_at = _checkpoints(two)
    assert killed_at and killed_at[-1] < STEPS, f"the kill came too late to test resuming (checkpoints {killed_at})"

    _wait(_launch(two, 2, 4, cache), two)
    log = open(f"{two}.0.log").read()
    assert "jax.distributed: 2 processes, 8 devices (4 local)" in log, log[-2000:]

    _assert_equal_metrics(one, two)
    for name in ("config.json", "curves.png", "tb"):
        assert os.path.exists(os.path.join(two, name)), name
    events = os.listdir(os.path.join(two, "tb"))
    assert len(events) == 1, f"one TensorBoard file (rewritten on resume), from process 0 alone: {events}"
    scalars = read_tensorboard(os.path.join(two, "tb"))
    assert len(scalars) == len({(tag, step) for tag, step, _ in scalars}), "a step twice in TensorBoard"
    assert {step for _, step, _ in scalars} == set(range(STEPS + 1))


@pytest.mark.slow  # ~3 min on the 2-core VM: in `pytest -m slow`, out of CI's 25 minutes
def test_two_processes_sigtermed_stop_at_one_step_and_resume_equal_one_process(tmp_path, one_process):
    """A scheduler's SIGTERM to both processes: each finishes the step in flight, both save the same step (one
    checkpoint: periodic ones are off) and exit 75 with the same line; the same command resumes."""
    one, cache = one_process
    two = str(tmp_path / "two")
    procs = _launch(two, 2, 4, cache, "train.checkpoint_every=100")
    _step_logged(two, procs, 1)
    sent = time.monotonic()
    for p in procs:
        p.send_signal(signal.SIGTERM)
    codes = [p.wait(timeout=120) for p in procs]
    took = time.monotonic() - sent
    logs = [open(f"{two}.{i}.log").read() for i in range(2)]
    assert codes == [PREEMPTED_EXIT_CODE] * 2, f"exit codes {codes}:\n" + logs[0][-2000:] + logs[1][-2000:]
    (step,) = _checkpoints(two)
    assert step < STEPS, f"stopped at {step}: the signal came too late to test resuming"
    line = f"preempted at step {step}: checkpoint saved to {two}/checkpoints/{step}; run the same command to resume"
    assert [log.strip().splitlines()[-1] for log in logs] == [line, line]
    # one or two steps (the sync point is the step after the latest any process reached; tiny_gt steps take 0.1-0.3 s
    # here), one save (20 saves took 3.3 s in all) and the shutdown: 60 s leaves room for a loaded 2-core machine
    assert took < 60, f"{took:.0f} s from SIGTERM to exit"

    _wait(_launch(two, 2, 4, cache, "train.checkpoint_every=100"), two)
    _assert_equal_metrics(one, two)


@pytest.mark.slow  # ~3 min on the 2-core VM: in `pytest -m slow`, out of CI's 25 minutes
def test_a_dead_process_is_named_by_the_survivor(tmp_path, xla_cache):
    """Process 1 SIGKILLed mid-run: process 0, blocked in the next collective, says what happened and how to resume
    (exit 69) before JAX's coordination service would abort it (heartbeat timeout 10 s here, the watch at 8 s)."""
    two = str(tmp_path / "two")
    procs = _launch(two, 2, 4, xla_cache, "train.steps=1000", URLVR_HEARTBEAT_TIMEOUT="10")
    _step_logged(two, procs, 2)
    procs[1].send_signal(signal.SIGKILL)
    killed = time.monotonic()
    code = procs[0].wait(timeout=120)
    took = time.monotonic() - killed
    procs[1].wait()
    log = open(f"{two}.0.log").read()
    assert code == PEER_LOST_EXIT_CODE, f"exit {code}:\n{log[-3000:]}"
    last = log.strip().splitlines()[-1]
    # (gloo's all-gather fails at once with "Connection reset by peer"; the peer watch covers collectives that hang)
    assert last.startswith("error: lost ") and "run the same command on every host to resume" in last, last
    assert "Terminating process" not in log  # JAX's own abort never came
    # the next collective fails at once (gloo) or the watch fires within 8.8 s; JAX's own abort would come at 10 s
    assert took < 30, f"{took:.0f} s from the kill to the survivor's exit"


@pytest.mark.slow
def test_cpu_default_runs_in_two_processes(tmp_path):
    """The main job as a pod runs it: the prior is warm-started by process 0 and reused by process 1, both arms
    train across the processes, and process 0 alone writes the figure and the summary."""
    run_dir, port, procs = str(tmp_path / "cpu_default"), _free_port(), []
    tiny = ("warm_start.steps=20", "train.steps=2", "train.checkpoint_every=2", "val.every=2", "data.val_size=8",
            "rollout.prompts_per_step=8", "algo.mini_batch_prompts=8", "mesh=data:2,fsdp:2,tensor:2",
            "train.progress=false", f"run_dir={run_dir}")
    for i in range(2):
        env = cli_env(str(tmp_path / "xla_cache"))
        env.update(XLA_FLAGS="--xla_force_host_platform_device_count=4", URLVR_DISTRIBUTED="1",
                   URLVR_COORDINATOR=f"localhost:{port}", URLVR_NUM_PROCESSES="2", URLVR_PROCESS_ID=str(i))
        log = open(f"{run_dir}.{i}.log", "w")
        procs.append(subprocess.Popen([sys.executable, "-m", "urlvr_jax.studies", "run", "cpu_default", *tiny],
                                      cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT))
    _wait(procs, run_dir, timeout=1200)
    out = [open(f"{run_dir}.{i}.log").read() for i in range(2)]
    assert "Model Collapse Step (majority vote" in out[0] and "Model Collapse Step" not in out[1]
    summary = json.load(open(os.path.join(run_dir, "summary.json")))
    assert set(summary) >= {"majority_vote", "ground_truth", "collapse_step"}
    for arm in ("majority_vote", "ground_truth"):
        steps = [r["step"] for r in read_metrics(os.path.join(run_dir, arm)) if "train/loss" in r]
        assert steps == [1, 2], (arm, steps)
