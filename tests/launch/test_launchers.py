"""launch/gpu_multinode.sh and launch/tpu_pod.sh with fake ``sbatch``, ``srun``, ``scontrol``, ``gcloud`` and
``python`` executables on PATH: the command each worker runs, its process id, coordinator and arguments."""

from __future__ import annotations

import json
import os
import shlex
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
GPU = REPO / "launch" / "gpu_multinode.sh"
TPU = REPO / "launch" / "tpu_pod.sh"
ARGS = ["--config", "tiny_gt", "mesh=data:2,fsdp:4", "run_dir=/shared/runs/a b"]
NODES = ["gpu-a17", "gpu-a18", "gpu-a19"]

# sbatch: reads the script's #SBATCH directives (those before its first command, as sbatch does) into
# $FAKE_ROOT/sbatch.json, copies the script to a spool directory (as slurmd does) and runs it as the batch step of a
# 3-node job (its pid in $FAKE_ROOT/batch.pid).
SBATCH = f"""
import json, os, shutil, subprocess, sys
root = os.environ["FAKE_ROOT"]
lines = open(sys.argv[1]).read().splitlines()[1:]
header = lines[:next((i for i, line in enumerate(lines) if line.strip() and not line.startswith("#")), len(lines))]
directives = [line.split()[1] for line in header if line.startswith("#SBATCH ")]
json.dump(directives, open(os.path.join(root, "sbatch.json"), "w"))
spool = os.path.join(root, "spool")
os.makedirs(spool, exist_ok=True)
script = shutil.copy(sys.argv[1], os.path.join(spool, "slurm_script"))
env = dict(os.environ, SLURM_JOB_ID="4242", SLURM_JOB_NUM_NODES="3", SLURM_NNODES="3", SLURM_NTASKS="24",
           SLURM_PROCID="0", SLURM_JOB_NODELIST="gpu-a[17-19]", SLURM_NODELIST="gpu-a[17-19]",
           SLURM_SUBMIT_DIR=os.getcwd())
batch = subprocess.Popen(["bash", script, *sys.argv[2:]], env=env, cwd=spool)
open(os.path.join(root, "batch.pid"), "w").write(str(batch.pid))
sys.exit(batch.wait())
"""
# srun: starts --ntasks copies of the command at once, one per node, as Slurm sets a step's task variables; passes
# SIGTERM on to every task (as srun does) and exits with the largest task exit code.
SRUN = """
import os, signal, subprocess, sys
ntasks = int(next(a.split("=")[1] for a in sys.argv if a.startswith("--ntasks=")))
first = next(i for i, a in enumerate(sys.argv) if i and not a.startswith("--"))
command = sys.argv[first:]
tasks = [subprocess.Popen(command, env=dict(os.environ, SLURM_STEP_ID="0", SLURM_PROCID=str(i),
                                            SLURM_NTASKS=str(ntasks), SLURM_NODEID=str(i),
                                            SLURM_STEP_NODELIST=os.environ["SLURM_JOB_NODELIST"]))
         for i in range(ntasks)]
signal.signal(signal.SIGTERM, lambda *_: [t.send_signal(signal.SIGTERM) for t in tasks])
sys.exit(max(t.wait() for t in tasks))
"""
SCONTROL = f"""
import sys
if sys.argv[1] == "requeue":
    assert sys.argv[2:] == ["4242"], sys.argv
    sys.exit(0)
assert sys.argv[1:] == ["show", "hostnames", "gpu-a[17-19]"], sys.argv
print("\\n".join({NODES!r}))
"""
# python: records its environment, arguments and working directory (one JSON file per process id); with
# FAKE_TRAIN=preempt it then runs until SIGTERM and exits 75 as a preempted run does, FAKE_TRAIN=<code> exits <code>.
PYTHON = """
import json, os, signal, sys, time
out = os.path.join(os.environ["FAKE_ROOT"], "python-" + os.environ.get("URLVR_PROCESS_ID", str(os.getpid())) + ".json")
json.dump({"argv": sys.argv[1:], "cwd": os.getcwd(), "env": {k: v for k, v in os.environ.items()}}, open(out, "w"))
if os.environ.get("FAKE_TRAIN") == "preempt":
    def preempted(*_):
        print("preempted at step 7: checkpoint saved to /ckpt/7; run the same command to resume", flush=True)
        sys.exit(75)
    signal.signal(signal.SIGTERM, preempted)
    time.sleep(60)
    sys.exit(3)
elif os.environ.get("FAKE_TRAIN"):
    sys.exit(int(os.environ["FAKE_TRAIN"]))
"""
# gcloud: `compute tpus tpu-vm ssh NAME ... --worker=all --command C` runs C here once per fake worker, with a
# `hostname` that names the worker; `scp` just records itself.
GCLOUD = """
import os, subprocess, sys
workers = int(os.environ.get("FAKE_WORKERS", "2"))
if "--command" in sys.argv:
    which = next(a.split("=")[1] for a in sys.argv if a.startswith("--worker="))
    command = sys.argv[sys.argv.index("--command") + 1]
    for w in range(workers) if which == "all" else [int(which)]:
        home = os.path.join(os.environ["FAKE_ROOT"], f"worker{w}")
        os.makedirs(home, exist_ok=True)
        env = dict(os.environ, FAKE_HOST=f"t1v-w-{w}", HOME=home)
        subprocess.run(["bash", "-c", command], env=env, cwd=home, check=True)
"""
HOSTNAME = 'import os; print(os.environ.get("FAKE_HOST", "localhost"))'


def write_program(path: Path, body: str) -> None:
    """An executable Python program that first appends its name and argv to $FAKE_ROOT/calls.jsonl."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!{sys.executable}\nimport json, os, sys\n"
                    f"open(os.path.join(os.environ['FAKE_ROOT'], 'calls.jsonl'), 'a').write("
                    f"json.dumps([{path.name!r}, *sys.argv[1:]]) + '\\n')\n{body}")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def write_fakes(root: Path, **programs: str) -> None:
    for name, body in programs.items():
        write_program(root / "bin" / name, body)


def launch_env(root: Path, **env: str) -> dict:
    """This environment with root/bin first on PATH, FAKE_ROOT=root and no cluster variables."""
    cluster = ("SLURM_", "URLVR_", "MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "NNODES", "DRY_RUN", "VENV", "REPO_DIR")
    base = {k: v for k, v in os.environ.items() if not k.startswith(cluster)}
    return dict(base, FAKE_ROOT=str(root), PATH=f"{root / 'bin'}{os.pathsep}{base['PATH']}", **env)


def launch(command: list[str], root: Path, check: bool = True, **env: str) -> subprocess.CompletedProcess:
    """Runs a launcher from the repository root with root/bin first on PATH and no cluster variables inherited."""
    result = subprocess.run(command, env=launch_env(root, **env), cwd=REPO, capture_output=True, text=True, timeout=60)
    assert not check or result.returncode == 0, result.stderr
    return result


def calls(root: Path, program: str) -> list[list[str]]:
    lines = (root / "calls.jsonl").read_text().splitlines()
    return [c[1:] for c in map(json.loads, lines) if c[0] == program]


def worker_env(line: str) -> tuple[dict[str, str], list[str]]:
    """The URLVR_* assignments and the program's arguments after `-m urlvr_jax.train` of a printed worker line."""
    words = shlex.split(line)
    assert words[:3] == ["cd", str(REPO), "&&"], words
    env = dict(w.split("=", 1) for w in words[3:] if w.startswith("URLVR_"))
    return env, words[words.index("-m") + 2:]


def test_sbatch_starts_one_task_per_node_with_its_process_id(tmp_path):
    """The batch step (SLURM_PROCID=0, a spooled copy of the script) starts one srun task per node, each running
    the repository's script; every task runs the program with its own process id and node 0 as coordinator."""
    write_fakes(tmp_path, sbatch=SBATCH, srun=SRUN, scontrol=SCONTROL, python=PYTHON)
    launch(["sbatch", str(GPU), *ARGS], tmp_path, VENV="")
    (srun,) = calls(tmp_path, "srun")
    assert "--ntasks-per-node=1" in srun and "--ntasks=3" in srun and "--nodes=3" in srun
    assert srun[-len(ARGS) - 1:] == [str(GPU), *ARGS]  # the repository's copy, not slurmd's spooled one
    for rank in range(3):
        record = json.loads((tmp_path / f"python-{rank}.json").read_text())
        assert record["argv"] == ["-m", "urlvr_jax.train", *ARGS]
        assert record["cwd"] == str(REPO)
        env = record["env"]
        assert (env["URLVR_DISTRIBUTED"], env["URLVR_NUM_PROCESSES"], env["URLVR_PROCESS_ID"]) == ("1", "3", str(rank))
        assert env["URLVR_COORDINATOR"] == f"{NODES[0]}:{20000 + 4242}"
    assert not (tmp_path / "python-3.json").exists()


def test_sbatch_asks_for_sigterm_before_the_time_limit_and_requeues_on_75(tmp_path):
    write_fakes(tmp_path, sbatch=SBATCH, srun=SRUN, scontrol=SCONTROL, python=PYTHON)
    result = launch(["sbatch", str(GPU), *ARGS], tmp_path, check=False, VENV="", FAKE_TRAIN="75")
    assert result.returncode == 75, result.stderr
    assert {"--signal=B:TERM@120", "--requeue"} <= set(json.loads((tmp_path / "sbatch.json").read_text()))
    assert ["requeue", "4242"] in calls(tmp_path, "scontrol")
    assert "requeueing job 4242" in result.stderr
    write_fakes(tmp_path / "failed", sbatch=SBATCH, srun=SRUN, scontrol=SCONTROL, python=PYTHON)
    failed = launch(["sbatch", str(GPU), *ARGS], tmp_path / "failed", check=False, VENV="", FAKE_TRAIN="1")
    assert failed.returncode == 1 and ["requeue", "4242"] not in calls(tmp_path / "failed", "scontrol")


def test_sigterm_to_the_batch_script_reaches_every_task_then_requeues(tmp_path):
    """SLURM's --signal=B:TERM goes to the batch script alone: it passes it to srun, srun to every task."""
    write_fakes(tmp_path, sbatch=SBATCH, srun=SRUN, scontrol=SCONTROL, python=PYTHON)
    env = launch_env(tmp_path, VENV="", FAKE_TRAIN="preempt")
    proc = subprocess.Popen(["sbatch", str(GPU), *ARGS], env=env, cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 30
        while len(list(tmp_path.glob("python-*.json"))) < 3 and time.time() < deadline:
            time.sleep(0.1)
        os.kill(int((tmp_path / "batch.pid").read_text()), signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 75, err
    assert out.count("preempted at step 7") == 3, out  # every task stopped on the signal, none ran out its sleep
    assert "passing it to every task" in err and ["requeue", "4242"] in calls(tmp_path, "scontrol")


def test_sbatch_dry_run_prints_every_workers_command(tmp_path):
    write_fakes(tmp_path, sbatch=SBATCH, srun=SRUN, scontrol=SCONTROL, python=PYTHON)
    out = launch(["sbatch", str(GPU), *ARGS], tmp_path, DRY_RUN="1", VENV="", MASTER_PORT="29500").stdout
    # (the tasks run at once: their lines come in any order)
    lines = sorted(out.strip().splitlines(), key=lambda line: worker_env(line)[0]["URLVR_PROCESS_ID"])
    assert len(lines) == 3
    for rank, line in enumerate(lines):
        env, args = worker_env(line)
        assert env == {"URLVR_DISTRIBUTED": "1", "URLVR_COORDINATOR": f"{NODES[0]}:29500",
                       "URLVR_NUM_PROCESSES": "3", "URLVR_PROCESS_ID": str(rank)}
        assert args == ARGS
    assert not list(tmp_path.glob("python-*.json"))  # printed, not run


def test_by_hand_dry_run_without_node_rank_prints_all_ranks(tmp_path):
    out = launch(["bash", str(GPU), *ARGS], tmp_path, DRY_RUN="1", MASTER_ADDR="node0", NNODES="4").stdout
    envs = [worker_env(line) for line in out.strip().splitlines()]
    assert [e["URLVR_PROCESS_ID"] for e, _ in envs] == ["0", "1", "2", "3"]
    assert {e["URLVR_COORDINATOR"] for e, _ in envs} == {"node0:12355"}
    assert all(args == ARGS for _, args in envs)


def test_by_hand_runs_python_with_the_cluster_environment(tmp_path):
    write_fakes(tmp_path, python=PYTHON)
    launch(["bash", str(GPU), *ARGS], tmp_path, VENV="", NNODES="1", NODE_RANK="0", MASTER_ADDR="localhost")
    record = json.loads((tmp_path / "python-0.json").read_text())
    assert record["argv"] == ["-m", "urlvr_jax.train", *ARGS] and record["cwd"] == str(REPO)
    env = record["env"]
    assert {k: env[k] for k in env if k.startswith("URLVR_")} == {
        "URLVR_DISTRIBUTED": "1", "URLVR_COORDINATOR": "localhost:12355", "URLVR_NUM_PROCESSES": "1",
        "URLVR_PROCESS_ID": "0"}


def test_by_hand_rejects_a_rank_outside_the_job(tmp_path):
    result = launch(["bash", str(GPU), "--config", "tiny_gt"], tmp_path, check=False, MASTER_ADDR="node0", NNODES="2",
                    NODE_RANK="2")
    assert result.returncode == 2
    assert "process id 2 is not in 0..1 (NODE_RANK / NNODES)" in result.stderr


TPU_ENV = dict(TPU_NAME="my-v4-16", ZONE="us-central2-b", MODEL_SRC="gs://bucket/Qwen3-1.7B-Base",
               RUN_DIR="gs://bucket/runs/r1")


def test_tpu_dry_run_prints_one_identical_command_for_all_workers(tmp_path):
    write_fakes(tmp_path, gcloud=GCLOUD)
    out = launch(["bash", str(TPU), "start", *ARGS[:3]], tmp_path, DRY_RUN="1", **TPU_ENV)
    (line,) = out.stdout.strip().splitlines()
    words = shlex.split(line)
    assert words[:5] == ["gcloud", "compute", "tpus", "tpu-vm", "ssh"] and "--worker=all" in words
    remote = shlex.split(words[words.index("--command") + 1])
    program = remote[remote.index("URLVR_DISTRIBUTED=1") + 1:]
    assert program[:3] == [".venv/bin/python", "-m", "urlvr_jax.train"]
    assert program[3:6] == ARGS[:3]
    assert program[6:8] == ["model.path=/tmp/urlvr_jax_model", "run_dir=gs://bucket/runs/r1"]
    assert "warning" not in out.stderr
    assert not (tmp_path / "calls.jsonl").exists()  # printed, not run
    stage = launch(["bash", str(TPU), "stage"], tmp_path, DRY_RUN="1", **TPU_ENV).stdout
    assert "gcloud storage rsync --recursive gs://bucket/Qwen3-1.7B-Base /tmp/urlvr_jax_model" in stage


def test_tpu_warns_about_a_run_dir_on_each_workers_disk(tmp_path):
    write_fakes(tmp_path, gcloud=GCLOUD)
    out = launch(["bash", str(TPU), "start", *ARGS], tmp_path, DRY_RUN="1", TPU_NAME="t", ZONE="z")
    assert "run_dir=/shared/runs/a b is not a gs:// URL" in out.stderr


def test_tpu_start_status_stop_on_fake_workers(tmp_path):
    """`start` runs every worker's program detached with its own log; `status` sees it; `stop` ends it."""
    write_fakes(tmp_path, gcloud=GCLOUD, hostname=HOSTNAME)
    for w in range(2):  # each fake worker's checkout (its ssh home here), with its .venv's python
        write_program(tmp_path / f"worker{w}" / ".venv" / "bin" / "python", PYTHON + "import time; time.sleep(60)\n")
    env = dict(TPU_ENV, REPO_DIR=".", LOG_DIR="logs")  # relative: under each worker's REPO_DIR
    out = launch(["bash", str(TPU), "start", *ARGS[:3]], tmp_path, **env).stdout
    assert "t1v-w-0: started pid" in out and "t1v-w-1: started pid" in out
    try:
        deadline = time.time() + 30
        while len(list(tmp_path.glob("python-*.json"))) < 2 and time.time() < deadline:
            time.sleep(0.1)
        records = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("python-*.json"))]
        assert len(records) == 2
        for record in records:
            assert record["argv"] == ["-m", "urlvr_jax.train", *ARGS[:3], "model.path=/tmp/urlvr_jax_model",
                                      "run_dir=gs://bucket/runs/r1"]
            assert record["env"]["URLVR_DISTRIBUTED"] == "1"
        for w in range(2):
            assert [p.name for p in (tmp_path / f"worker{w}" / "logs").glob("*.log")] == [f"t1v-w-{w}.log"]
        status = launch(["bash", str(TPU), "status"], tmp_path, **env).stdout
        assert status.count(": running") == 2, status
    finally:
        stop = launch(["bash", str(TPU), "stop"], tmp_path, **env).stdout
    assert stop.count(": stopped pid") == 2, stop
    status = launch(["bash", str(TPU), "status"], tmp_path, **env).stdout
    assert status.count(": stopped") == 2, status


def test_tpu_stop_lets_every_worker_checkpoint_and_shows_its_last_line(tmp_path):
    """`stop` sends SIGTERM as a spot preemption does: each worker's run saves its step and exits 75, and `stop`
    prints the run's last line (the `preempted at step N ...` one) for each worker."""
    write_fakes(tmp_path, gcloud=GCLOUD, hostname=HOSTNAME)
    for w in range(2):
        write_program(tmp_path / f"worker{w}" / ".venv" / "bin" / "python", PYTHON)
    env = dict(TPU_ENV, REPO_DIR=".", LOG_DIR="logs", FAKE_TRAIN="preempt")
    launch(["bash", str(TPU), "start", *ARGS[:3]], tmp_path, **env)
    deadline = time.time() + 30
    while len(list(tmp_path.glob("python-*.json"))) < 2 and time.time() < deadline:
        time.sleep(0.1)
    stop = launch(["bash", str(TPU), "stop"], tmp_path, **env).stdout
    line = "preempted at step 7: checkpoint saved to /ckpt/7; run the same command to resume"
    assert [l.split(": ", 2)[2] for l in stop.strip().splitlines() if ": stopped pid" in l] == [line, line], stop
