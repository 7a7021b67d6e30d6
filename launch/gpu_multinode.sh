#!/usr/bin/env bash
#SBATCH --signal=B:TERM@120
#SBATCH --requeue
#SBATCH --open-mode=append
# Multi-node GPU launch: one process per node driving all of its GPUs, every process running the same command.
#
# Under SLURM (the batch script starts one task per node with srun, each task runs this script again):
#   sbatch --nodes=4 --gpus-per-node=8 launch/gpu_multinode.sh --config paper_qwen3_1p7b mesh=data:4,fsdp:8
# By hand, on every node (torchrun-style variables):
#   MASTER_ADDR=node0 NNODES=4 NODE_RANK=<0..3> launch/gpu_multinode.sh --config paper_qwen3_1p7b mesh=data:4,fsdp:8
#
# Environment:
#   REPO_DIR     the repository on every node (default: the checkout holding this script; under sbatch, whose
#                spooled copy lies outside the repository, $SLURM_SUBMIT_DIR when it holds urlvr_jax/)
#   VENV         the virtual environment whose python runs (default: $REPO_DIR/.venv when it has one; empty: the
#                python on PATH)
#   ENTRYPOINT   the module to run (default: urlvr_jax.train)
#   MASTER_ADDR  the coordinator's host (under SLURM: the first node of the step)
#   MASTER_PORT  the coordinator's port (default 12355; under SLURM 20000 + job id mod 20000)
#   DRY_RUN=1    print each worker's command instead of running it (by hand without NODE_RANK: every rank's)
# Each process gets URLVR_DISTRIBUTED=1, URLVR_COORDINATOR=host:port, URLVR_NUM_PROCESSES and URLVR_PROCESS_ID,
# which urlvr_jax.utils.distributed passes to jax.distributed.initialize(). Plan first (launch/README.md).
#
# Preemption (the #SBATCH lines above): SLURM sends SIGTERM to the batch script 120 s before the time limit; the script
# forwards it to srun, which passes it to every task; each process finishes its step, saves a checkpoint and exits 75
# (urlvr_jax.utils.preemption), and on 75 the script requeues the job (scontrol requeue): the same command resumes
# from that checkpoint in the same run_dir. Exit 69: another process died (no requeue; see launch/README.md).
set -euo pipefail

ENTRYPOINT="${ENTRYPOINT:-urlvr_jax.train}"
SLURM_BATCH_STEP=4294967294  # the step id Slurm gives the batch script itself
PREEMPTED_EXIT_CODE=75       # urlvr_jax.utils.preemption: a checkpoint was saved on SIGTERM; requeue

repo_dir() {
  if [[ -n "${REPO_DIR:-}" ]]; then echo "$REPO_DIR"; return; fi
  local here
  here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  for dir in "$here" "${SLURM_SUBMIT_DIR:-}"; do
    if [[ -n "$dir" && -d "$dir/urlvr_jax" ]]; then echo "$dir"; return; fi
  done
  echo "gpu_multinode.sh: cannot find the repository (no urlvr_jax/ beside $here or in SLURM_SUBMIT_DIR);" \
    "set REPO_DIR" >&2
  exit 2
}

in_slurm_task() {  # inside a task srun started (ours, marked, or the user's own srun), not the batch script
  [[ "${URLVR_SLURM_TASK:-}" == 1 ]] && return 0
  [[ -n "${SLURM_STEP_ID:-}" && "$SLURM_STEP_ID" != "$SLURM_BATCH_STEP" && "$SLURM_STEP_ID" != batch ]]
}

# The line a worker runs, printed or executed: environment assignments, then the program.
worker_line() {  # coordinator num_processes process_id args...
  local coordinator="$1" num="$2" id="$3"; shift 3
  printf 'cd %q && URLVR_DISTRIBUTED=1 URLVR_COORDINATOR=%q URLVR_NUM_PROCESSES=%q URLVR_PROCESS_ID=%q' \
    "$REPO" "$coordinator" "$num" "$id"
  printf ' %q -m %q' "$PYTHON" "$ENTRYPOINT"; printf ' %q' "$@"; echo
}

REPO="$(repo_dir)"

if [[ -n "${SLURM_JOB_ID:-}" ]] && ! in_slurm_task; then
  # The batch script (or an salloc shell): start one task per node, each running the repository's copy of this
  # script (the batch script is a spooled copy on the first node only), marked so it does not srun again.
  nodes="${SLURM_JOB_NUM_NODES:-${SLURM_NNODES:?SLURM_JOB_NUM_NODES is not set}}"
  srun_cmd=(srun --nodes="$nodes" --ntasks="$nodes" --ntasks-per-node=1 --kill-on-bad-exit=1
            "$REPO/launch/gpu_multinode.sh" "$@")
  echo "gpu_multinode.sh: job $SLURM_JOB_ID, $nodes node(s): $(printf '%q ' "${srun_cmd[@]}")" >&2
  export URLVR_SLURM_TASK=1 REPO_DIR="$REPO"
  "${srun_cmd[@]}" &
  srun_pid=$!
  trap 'echo "gpu_multinode.sh: SIGTERM: passing it to every task (they checkpoint and stop)" >&2
        kill -TERM "$srun_pid" 2>/dev/null || true' TERM
  status=0
  wait "$srun_pid" || status=$?
  while kill -0 "$srun_pid" 2>/dev/null; do  # (the trap ended the first wait early)
    status=0
    wait "$srun_pid" || status=$?
  done
  if [[ "${DRY_RUN:-0}" != 1 && "$status" == "$PREEMPTED_EXIT_CODE" ]]; then
    echo "gpu_multinode.sh: preempted with a checkpoint: requeueing job $SLURM_JOB_ID (same command, same run_dir)" >&2
    scontrol requeue "$SLURM_JOB_ID"
  fi
  exit "$status"
fi

VENV="${VENV-$REPO/.venv}"
PYTHON=python
if [[ -n "$VENV" && -x "$VENV/bin/python" ]]; then PYTHON="$VENV/bin/python"; fi

if in_slurm_task; then
  nodelist="${SLURM_STEP_NODELIST:-${SLURM_JOB_NODELIST:-${SLURM_NODELIST:?no SLURM nodelist}}}"
  # (no `| head -n 1`: under pipefail, head closing the pipe early could fail the whole line)
  mapfile -t hosts < <(scontrol show hostnames "$nodelist")
  head_node="${MASTER_ADDR:-${hosts[0]:?scontrol show hostnames $nodelist printed no host}}"
  coordinator="$head_node:${MASTER_PORT:-$((20000 + SLURM_JOB_ID % 20000))}"
  num_processes="${SLURM_STEP_NUM_TASKS:-${SLURM_NTASKS:?SLURM_NTASKS is not set}}"
  ranks=("${SLURM_PROCID:?SLURM_PROCID is not set}")
else
  : "${MASTER_ADDR:?set MASTER_ADDR (the first node) or run under SLURM (sbatch)}"
  : "${NNODES:?set NNODES (the number of nodes)}"
  coordinator="$MASTER_ADDR:${MASTER_PORT:-12355}"
  num_processes="$NNODES"
  if [[ -n "${NODE_RANK:-}" ]]; then
    ranks=("$NODE_RANK")
  elif [[ "${DRY_RUN:-0}" == 1 ]]; then
    mapfile -t ranks < <(seq 0 $((NNODES - 1)))
  else
    echo "gpu_multinode.sh: set NODE_RANK (the index of this node, 0 on MASTER_ADDR)" >&2
    exit 2
  fi
fi
for rank in "${ranks[@]}"; do
  if ! [[ "$rank" =~ ^[0-9]+$ && "$num_processes" =~ ^[0-9]+$ && rank -lt num_processes ]]; then
    echo "gpu_multinode.sh: process id $rank is not in 0..$((num_processes - 1)) (NODE_RANK / NNODES)" >&2
    exit 2
  fi
done

if [[ "${DRY_RUN:-0}" == 1 ]]; then
  for rank in "${ranks[@]}"; do worker_line "$coordinator" "$num_processes" "$rank" "$@"; done
  exit 0
fi

export URLVR_DISTRIBUTED=1 URLVR_COORDINATOR="$coordinator" URLVR_NUM_PROCESSES="$num_processes" \
  URLVR_PROCESS_ID="${ranks[0]}"
# Let XLA take most of each GPU up front (the plan's budget assumes it) and keep the NCCL logs quiet.
export XLA_PYTHON_CLIENT_MEM_FRACTION="${XLA_PYTHON_CLIENT_MEM_FRACTION:-0.95}" NCCL_DEBUG="${NCCL_DEBUG:-WARN}"
cd "$REPO"
exec "$PYTHON" -m "$ENTRYPOINT" "$@"
