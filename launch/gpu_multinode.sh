#!/usr/bin/env bash
# Multi-node GPU launch: one process per node driving all of its GPUs, all running the same command.
#
# Under SLURM (one task per node):
#   sbatch --nodes=4 --ntasks-per-node=1 --gpus-per-node=8 launch/gpu_multinode.sh --config paper_qwen3_1p7b \
#       mesh=data:4,fsdp:8
# By hand, on every node (torchrun-style variables):
#   MASTER_ADDR=node0 MASTER_PORT=12355 NNODES=4 NODE_RANK=<0..3> launch/gpu_multinode.sh --config ... [key=value]
#
# Environment:
#   REPO_DIR     the repository, with its .venv, on every node (default: this checkout)
#   ENTRYPOINT   the module to run (default: urlvr_jax.train)
#   MASTER_PORT  the coordinator's port (default 12355)
#   DRY_RUN=1    print the environment and command instead of running
# The script turns SLURM_* or MASTER_ADDR/NNODES/NODE_RANK into URLVR_COORDINATOR, URLVR_NUM_PROCESSES and
# URLVR_PROCESS_ID; the program passes them to jax.distributed.initialize(). Plan first (launch/README.md).
set -euo pipefail

REPO_DIR="${REPO_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
ENTRYPOINT="${ENTRYPOINT:-urlvr_jax.train}"
PORT="${MASTER_PORT:-12355}"

if [[ -n "${SLURM_JOB_ID:-}" && -z "${SLURM_PROCID:-}" ]]; then
  # Inside the batch script, not yet in a task: start one task per node running this same script.
  exec srun --ntasks-per-node=1 --kill-on-bad-exit=1 "$0" "$@"
fi

if [[ -n "${SLURM_PROCID:-}" ]]; then
  head_node="${MASTER_ADDR:-$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)}"
  coordinator="$head_node:$PORT"
  num_processes="$SLURM_NTASKS"
  process_id="$SLURM_PROCID"
else
  : "${MASTER_ADDR:?set MASTER_ADDR (the first node) or run under SLURM}"
  : "${NNODES:?set NNODES (the number of nodes)}"
  : "${NODE_RANK:?set NODE_RANK (the index of this node, 0 on MASTER_ADDR)}"
  coordinator="$MASTER_ADDR:$PORT"
  num_processes="$NNODES"
  process_id="$NODE_RANK"
fi

export URLVR_DISTRIBUTED=1 URLVR_COORDINATOR="$coordinator" URLVR_NUM_PROCESSES="$num_processes" \
  URLVR_PROCESS_ID="$process_id"
# Let XLA take most of each GPU up front (the plan's budget assumes it) and keep the NCCL logs quiet.
export XLA_PYTHON_CLIENT_MEM_FRACTION="${XLA_PYTHON_CLIENT_MEM_FRACTION:-0.95}" NCCL_DEBUG="${NCCL_DEBUG:-WARN}"

if [[ "${DRY_RUN:-0}" == 1 ]]; then
  env | grep -E '^URLVR_' | sort
  printf 'cd %q && python -m %s' "$REPO_DIR" "$ENTRYPOINT"; printf ' %q' "$@"; echo
  exit 0
fi
cd "$REPO_DIR"
if [[ -f .venv/bin/activate ]]; then . .venv/bin/activate; fi
exec python -m "$ENTRYPOINT" "$@"
