#!/usr/bin/env bash
# Runs the same URLVR command on every worker of a Cloud TPU pod slice.
#
#   TPU_NAME=my-v4-32 ZONE=us-central2-b launch/tpu_pod.sh --config paper_qwen3_1p7b mesh=fsdp:-1 [key=value ...]
#
# Environment:
#   TPU_NAME, ZONE      the TPU VM (required); PROJECT optional (gcloud's default project otherwise)
#   REPO_DIR            the repository on every worker (default: ~/urlvr_jax); it must already be there with
#                       its .venv (see launch/README.md, "setup")
#   ENTRYPOINT          the module to run (default: urlvr_jax.train)
#   SETUP=1             first copy this checkout to every worker and install it (pip install -e .)
#   DRY_RUN=1           print the gcloud command instead of running it
# Every worker gets URLVR_DISTRIBUTED=1, so the program calls jax.distributed.initialize(), which on TPU
# finds the coordinator and the process ids by itself. Plan the config first (launch/README.md).
set -euo pipefail

: "${TPU_NAME:?set TPU_NAME to the TPU VM name}"
: "${ZONE:?set ZONE to the TPU zone}"
REPO_DIR="${REPO_DIR:-~/urlvr_jax}"
ENTRYPOINT="${ENTRYPOINT:-urlvr_jax.train}"
PROJECT_FLAG=()
if [[ -n "${PROJECT:-}" ]]; then PROJECT_FLAG=(--project "$PROJECT"); fi

run() {
  if [[ "${DRY_RUN:-0}" == 1 ]]; then printf '%q ' "$@"; echo; else "$@"; fi
}

if [[ "${SETUP:-0}" == 1 ]]; then
  here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  archive="$(mktemp -t urlvr_jax.XXXXXX.tar.gz)"
  git -C "$here" archive --format=tar.gz -o "$archive" HEAD
  run gcloud compute tpus tpu-vm scp "$archive" "$TPU_NAME:/tmp/urlvr_jax.tar.gz" --zone "$ZONE" \
    "${PROJECT_FLAG[@]}" --worker=all
  run gcloud compute tpus tpu-vm ssh "$TPU_NAME" --zone "$ZONE" "${PROJECT_FLAG[@]}" --worker=all --command \
    "mkdir -p $REPO_DIR && tar -xzf /tmp/urlvr_jax.tar.gz -C $REPO_DIR && cd $REPO_DIR && \
     python3 -m venv .venv && . .venv/bin/activate && pip install -q -U pip && \
     pip install -q -r requirements.txt 'jax[tpu]' && pip install -q -e ."
fi

args=""
for a in "$@"; do args+=" $(printf '%q' "$a")"; done
# One log per worker under /tmp; the command is identical on every worker.
command="set -o pipefail; cd $REPO_DIR && . .venv/bin/activate && export URLVR_DISTRIBUTED=1 && \
python -m $ENTRYPOINT$args 2>&1 | tee /tmp/urlvr_jax_\$(hostname).log"
run gcloud compute tpus tpu-vm ssh "$TPU_NAME" --zone "$ZONE" "${PROJECT_FLAG[@]}" --worker=all --command "$command"
