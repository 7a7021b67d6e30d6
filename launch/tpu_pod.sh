#!/usr/bin/env bash
# A run on every worker of a Cloud TPU pod slice, through `gcloud compute tpus tpu-vm ssh --worker=all`.
#
#   launch/tpu_pod.sh setup                      copy this checkout (git archive HEAD) to every worker, install it
#   launch/tpu_pod.sh stage                      copy MODEL_SRC / DATA_SRC to every worker's local disk
#   launch/tpu_pod.sh start --config NAME [key=value ...]
#                                                start the run on every worker, detached (setsid nohup), one log each
#   launch/tpu_pod.sh status                     is it running on each worker; the last line of each log
#   launch/tpu_pod.sh tail                       follow worker $WORKER's log (default 0; WORKER=all: last lines of all)
#   launch/tpu_pod.sh stop                       stop the run on every worker (SIGTERM to its process group): it
#                                                saves a checkpoint of the step it reached and exits 75
#
# Environment:
#   TPU_NAME, ZONE   the TPU VM (required); PROJECT optional (gcloud's default project otherwise)
#   REPO_DIR         the repository on the workers (default: urlvr_jax, under the ssh user's home)
#   MODEL_SRC        gs://bucket/model-dir or a directory on a disk every worker mounts; `stage` copies it to
#                    MODEL_DIR (default: /tmp/urlvr_jax_model) and `start` adds model.path=MODEL_DIR
#   DATA_SRC         the same for the datasets: copied to DATA_DIR (default: /tmp/urlvr_jax_data), and `start`
#                    exports URLVR_DATA_DIR=DATA_DIR
#   RUN_DIR          `start` adds run_dir=RUN_DIR; it must be a gs:// URL or a disk every worker shares (orbax
#                    checkpoints are written by all workers together): a warning says so otherwise
#   LOG_DIR          each worker's log and pid file, on its own disk (default: /tmp/urlvr_jax_logs; relative:
#                    under REPO_DIR)
#   WORKER, TAIL_LINES  `tail`: which worker (default 0; all) and how many lines (default 20)
#   ENTRYPOINT       the module to run (default: urlvr_jax.train)
#   STOP_TIMEOUT     `stop`: seconds to wait for the checkpoint and the exit (default 300)
#   DRY_RUN=1        print the gcloud commands instead of running them
# Every worker runs the same command with URLVR_DISTRIBUTED=1; jax.distributed.initialize() finds the coordinator
# and the process ids itself on Cloud TPU. Plan the config first (launch/README.md).
# A preemptible / spot slice gets SIGTERM on preemption the way `stop` sends it: the run saves the step it reached.
# Resume with the same `start` command and the same RUN_DIR (after `setup` and `stage` on a recreated slice).
set -euo pipefail

usage() { sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }
[[ $# -ge 1 ]] || usage
action="$1"; shift

: "${TPU_NAME:?set TPU_NAME to the TPU VM name}"
: "${ZONE:?set ZONE to the TPU zone}"
REPO_DIR="${REPO_DIR:-urlvr_jax}"
MODEL_DIR="${MODEL_DIR:-/tmp/urlvr_jax_model}"
DATA_DIR="${DATA_DIR:-/tmp/urlvr_jax_data}"
LOG_DIR="${LOG_DIR:-/tmp/urlvr_jax_logs}"
ENTRYPOINT="${ENTRYPOINT:-urlvr_jax.train}"
GCLOUD_TPU=(gcloud compute tpus tpu-vm)
LOCATION=(--zone "$ZONE")
if [[ -n "${PROJECT:-}" ]]; then LOCATION+=(--project "$PROJECT"); fi
q() { printf '%q' "$1"; }
pid_file="$(q "$LOG_DIR")/urlvr_jax.pid"
in_repo="cd $(q "$REPO_DIR")"  # start, status, tail and stop run in the repository (a relative LOG_DIR is under it)

shown() {  # an argument as a shell reads it back: as it is when plain, else in single quotes
  if [[ "$1" =~ ^[A-Za-z0-9_./:=@%+,-]+$ ]]; then printf '%s' "$1"; else printf "'%s'" "${1//\'/\'\\\'\'}"; fi
}

run() {
  if [[ "${DRY_RUN:-0}" != 1 ]]; then "$@"; return; fi
  local line="" a
  for a in "$@"; do line+="${line:+ }$(shown "$a")"; done
  echo "$line"
}

on_workers() {  # worker command: the same shell command on the given worker(s)
  run "${GCLOUD_TPU[@]}" ssh "$TPU_NAME" "${LOCATION[@]}" --worker="$1" --command "$2"
}

copy_to_workers() {  # source destination: a gs:// URL or a (shared-disk) path, copied to a local directory
  local src="$1" dst="$2" copy
  if [[ "$src" == gs://* ]]; then
    copy="gcloud storage rsync --recursive $(q "$src") $(q "$dst")"
  else
    copy="test -d $(q "$src") || { echo \"\$(hostname): $(q "$src") is not a directory here\" >&2; exit 1; }; \
cp -rT $(q "$src") $(q "$dst")"
  fi
  on_workers all "mkdir -p $(q "$dst") && $copy"
}

case "$action" in
  setup)
    here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    archive=/tmp/urlvr_jax_checkout.tar.gz
    if [[ "${DRY_RUN:-0}" != 1 ]]; then
      archive="$(mktemp -t urlvr_jax.XXXXXX.tar.gz)"
      git -C "$here" archive --format=tar.gz -o "$archive" HEAD
    fi
    run "${GCLOUD_TPU[@]}" scp "$archive" "$TPU_NAME:/tmp/urlvr_jax.tar.gz" "${LOCATION[@]}" --worker=all
    on_workers all "mkdir -p $(q "$REPO_DIR") && tar -xzf /tmp/urlvr_jax.tar.gz -C $(q "$REPO_DIR") && \
cd $(q "$REPO_DIR") && python3 -m venv .venv && . .venv/bin/activate && pip install -q -U pip && \
pip install -q -r requirements.txt 'jax[tpu]==0.10.2' -e ."
    ;;
  stage)
    [[ -n "${MODEL_SRC:-}${DATA_SRC:-}" ]] || { echo "tpu_pod.sh stage: set MODEL_SRC and/or DATA_SRC" >&2; exit 2; }
    if [[ -n "${MODEL_SRC:-}" ]]; then copy_to_workers "$MODEL_SRC" "$MODEL_DIR"; fi
    if [[ -n "${DATA_SRC:-}" ]]; then copy_to_workers "$DATA_SRC" "$DATA_DIR"; fi
    ;;
  start)
    args=("$@")
    if [[ -n "${MODEL_SRC:-}" ]]; then args+=("model.path=$MODEL_DIR"); fi
    if [[ -n "${RUN_DIR:-}" ]]; then args+=("run_dir=$RUN_DIR"); fi
    run_dir=""
    for a in "${args[@]}"; do if [[ "$a" == run_dir=* ]]; then run_dir="${a#run_dir=}"; fi; done
    if [[ -z "$run_dir" ]]; then
      echo "tpu_pod.sh: warning: no RUN_DIR or run_dir=: the config's run_dir is a path on each worker's own" \
        "disk, so the workers' checkpoint pieces end up on different disks; use gs://... or a shared disk" >&2
    elif [[ "$run_dir" != gs://* ]]; then
      echo "tpu_pod.sh: warning: run_dir=$run_dir is not a gs:// URL: it must be a disk every worker mounts" \
        "(NFS, Filestore, gcsfuse), else each worker writes its checkpoint pieces to its own disk" >&2
    fi
    env_vars="URLVR_DISTRIBUTED=1"
    if [[ -n "${DATA_SRC:-}" ]]; then env_vars+=" URLVR_DATA_DIR=$(q "$DATA_DIR")"; fi
    program="$env_vars .venv/bin/python -m $(q "$ENTRYPOINT")"
    for a in "${args[@]}"; do program+=" $(q "$a")"; done
    # setsid: its own process group (stop kills the group); nohup and </dev/null: it outlives the ssh session.
    on_workers all "$in_repo && mkdir -p $(q "$LOG_DIR") && \
if [ -f $pid_file ] && kill -0 -- -\$(cat $pid_file) 2>/dev/null; then \
echo \"\$(hostname): already running (pid \$(cat $pid_file)); stop it first\" >&2; exit 1; fi && \
{ setsid nohup env $program > $(q "$LOG_DIR")/\$(hostname).log 2>&1 < /dev/null & echo \$! > $pid_file; } && \
echo \"\$(hostname): started pid \$(cat $pid_file), log $(q "$LOG_DIR")/\$(hostname).log\""
    ;;
  status)
    on_workers all "$in_repo; if [ -f $pid_file ] && kill -0 -- -\$(cat $pid_file) 2>/dev/null; then s=running; \
else s=stopped; fi; echo \"\$(hostname): \$s; \$(tail -n 1 $(q "$LOG_DIR")/\$(hostname).log 2>/dev/null)\""
    ;;
  tail)
    worker="${WORKER:-0}"
    if [[ "$worker" == all ]]; then
      on_workers all "$in_repo && tail -n ${TAIL_LINES:-20} $(q "$LOG_DIR")/\$(hostname).log"
    else
      on_workers "$worker" "$in_repo && tail -n ${TAIL_LINES:-20} -F $(q "$LOG_DIR")/\$(hostname).log"
    fi
    ;;
  stop)
    # SIGTERM to the run's process group: every process finishes its step, saves a checkpoint and exits 75 (the TPU is
    # then free for the next start); up to STOP_TIMEOUT seconds for that, then the last line of the worker's log.
    wait_s="${STOP_TIMEOUT:-300}"
    on_workers all "$in_repo; if [ -f $pid_file ] && kill -TERM -- -\$(cat $pid_file) 2>/dev/null; then \
for i in \$(seq $(q "$wait_s")); do kill -0 -- -\$(cat $pid_file) 2>/dev/null || break; sleep 1; done; \
if kill -0 -- -\$(cat $pid_file) 2>/dev/null; then echo \"\$(hostname): still running after $(q "$wait_s") s: \
kill -KILL -- -\$(cat $pid_file)\"; else echo \"\$(hostname): stopped pid \$(cat $pid_file): \
\$(tail -n 1 $(q "$LOG_DIR")/\$(hostname).log 2>/dev/null)\"; fi; \
else echo \"\$(hostname): not running\"; fi"
    ;;
  *)
    echo "tpu_pod.sh: unknown action $action" >&2
    usage
    ;;
esac
