#!/usr/bin/env bash
# The GPU checks on a GPU machine that has no network (bench/README.md, "On a GPU machine
# without network").  Two steps, one script:
#
#   bash bench/gpu_machine.sh wheels [DIR]   here, with network: the wheels the GPU machine lacks
#                                            into DIR (default .whl), for CPython 3.12 on x86-64
#   bash bench/gpu_machine.sh [DIR]          there, from the repository root, with DIR carried:
#                                            install them, run `pytest -m gpu`,
#                                            bench/gpu_memory.py and bench/train_step.py --gpu 0
#                                            for both experiments
#   bash bench/gpu_machine.sh records [DIR]  there: train both records at once on one GPU for at
#                                            most $TIME_BUDGET s, resuming what an earlier
#                                            command left in $RECORDS; bring back one archive
#                                            ($OUT/records.tar.gz, at most 16 MiB)
#
# The GPU machine keeps its own NumPy, SciPy, matplotlib, pytest and CuPy (whichever cupy-cudaXXx
# and CUDA libraries are installed there): the wheels are only what it lacks, installed with
# --no-deps into a folder of their own that goes first on PYTHONPATH, so nothing there changes.
# Everything is written into one folder: $OUT where it is set (the device tool's), else
# results/gpu-machine.  The exit status is that of the first step that failed.
set -uo pipefail
cd "$(dirname "$0")/.."

# What the GPU machine lacks (.library/device/KINDS.md lists what it has), at the versions this
# project resolves: Chainer (an sdist upstream: built here), pysptk and pyworld (no cp312 wheels
# on the package index: built here), soundfile with cffi and pycparser, pysptk's decorator, and
# setuptools < 81 (Chainer and pysptk import pkg_resources).
BUILT='chainer==7.8.1 pysptk==1.0.1 pyworld==0.3.5'
DOWNLOADED='soundfile==0.14.0 cffi==2.1.1 pycparser==3.12 decorator==5.3.1 setuptools==80.10.2'

wheels() {
  local dir=${1:-.whl} python=${PYTHON312:-python3.12}
  if ! "$python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' 2>/dev/null; then
    echo "gpu_machine.sh: $python does not run CPython 3.12 (pysptk and pyworld are built for" \
         "the GPU machine's Python 3.12): set PYTHON312 to one" >&2
    return 2
  fi
  mkdir -p "$dir" || return 1
  # Chainer's build needs setuptools < 81 (constraints.txt, as for every install).
  PIP_CONSTRAINT=$PWD/constraints.txt PIP_BUILD_CONSTRAINT=$PWD/constraints.txt \
    "$python" -m pip wheel -q --no-deps -w "$dir" $BUILT || return 1
  "$python" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d "$dir" $DOWNLOADED || return 1
  ls -l "$dir"
}

# Install the carried wheels where the machine lacks them (a machine that imports everything
# already, as a CPU rehearsal's environment does, installs nothing), and put the repository root
# first on PYTHONPATH: the experiments' train.py, run as scripts, import common from it.
install() {
  local dir=${1:-.whl} python=${PYTHON:-python3} site=/tmp/gpu-machine-site
  if ! "$python" -c 'import chainer, pysptk, pyworld, soundfile' 2>/dev/null; then
    "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target "$site" "$dir"/*.whl || return 1
    export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
  fi
  export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
}

run() {
  local dir=${1:-.whl} out=${OUT:-results/gpu-machine} python=${PYTHON:-python3} status=0
  mkdir -p "$out" || return 1
  install "$dir" || return 1

  { nvidia-smi; "$python" -m pip list 2>/dev/null | grep -i -E '^(cupy|numpy|nvidia|setuptools)'
    "$python" -m common.env; } > "$out/environment.txt" 2>&1
  cat "$out/environment.txt"

  "$python" -m pytest -m gpu -v -rs -s -p no:cacheprovider 2>&1 | tee "$out/pytest-gpu.txt"
  [ "${PIPESTATUS[0]}" = 0 ] || status=1

  # The records' minibatches: 50 (bc7db4a2) and 100 (c9335bce), within the record's card.
  local experiment batchsize
  for job in 'bc7db4a2 50' 'c9335bce 100'; do
    read -r experiment batchsize <<< "$job"
    "$python" bench/gpu_memory.py "$experiment" --gpu 0 --batchsize "$batchsize" \
      --gpu-memory-limit 2600 --json "$out/gpu_memory_$experiment.json" 2>&1 \
      | tee "$out/gpu_memory_$experiment.txt"
    [ "${PIPESTATUS[0]}" = 0 ] || status=1
    "$python" bench/train_step.py "$experiment" --gpu 0 --batchsize "$batchsize" --iterations 5 \
      --json "$out/train_step_$experiment.json" 2>&1 | tee "$out/train_step_$experiment.txt"
    [ "${PIPESTATUS[0]}" = 0 ] || status=1
  done
  echo "gpu_machine.sh: results in $out"
  return $status
}

# Both records at once on one GPU, within one command of the device tool (600 s at most).
#   RECORDS      folder of the runs, kept between commands (git-ignored, so the device tool
#                leaves it): default results/gpu-records
#   TIME_BUDGET  seconds of training in this command (default 480); then SIGTERM: each run
#                writes a snapshot and stops, and the next command resumes it
#   GPU          device of both runs (default 0; -1 rehearses on the CPU)
#   TRAIN_FLAGS  more flags for both train.py (a tiny schedule for a rehearsal)
# A run with a snapshot resumes from it; a folder without one (a run killed before its first
# snapshot) starts over.  The archive holds each results folder without snapshots and models
# (bc7db4a2's are 816 and 408 MB), the commands' output and status.txt.  Exit status 0 when
# each run finished or stopped at the budget (a run stopped before its training loop began loses
# nothing: its newest snapshot stays).
records() {
  local dir=${1:-.whl} out=${OUT:-results/gpu-machine} python=${PYTHON:-python3}
  local root=${RECORDS:-results/gpu-records} budget=${TIME_BUDGET:-480} gpu=${GPU:-0}
  local max_bytes=$((16 * 1024 * 1024)) status=0 experiment
  mkdir -p "$out" "$root" || return 1
  install "$dir" || return 1
  declare -A pids
  for experiment in bc7db4a2 c9335bce; do
    local folder="$root/$experiment" continue=()
    if compgen -G "$folder/snapshot_iter_*" > /dev/null; then
      continue=(--resume)
    elif [ -e "$folder" ]; then
      continue=(--force)
    fi
    echo "=== $(date -u +%FT%TZ) $experiment: train.py --gpu $gpu ${continue[*]} ${TRAIN_FLAGS:-}" \
      >> "$root/$experiment.out"
    # shellcheck disable=SC2086  (TRAIN_FLAGS is a list of flags)
    "$python" "$experiment/train.py" --gpu "$gpu" --out "$folder" "${continue[@]}" \
      ${TRAIN_FLAGS:-} >> "$root/$experiment.out" 2>&1 &
    pids[$experiment]=$!
  done
  # Wait for both, or until the budget is spent: then SIGTERM (snapshot and stop), SIGKILL after
  # 120 s more.
  local deadline=$((SECONDS + budget)) signalled=0
  while [ -n "$(jobs -rp)" ]; do
    if [ $SECONDS -ge $deadline ] && [ $signalled = 0 ]; then
      echo "gpu_machine.sh: $budget s spent: SIGTERM to the runs (they snapshot and stop)"
      kill -TERM "${pids[@]}" 2>/dev/null
      signalled=1 deadline=$((SECONDS + 120))
    elif [ $SECONDS -ge $deadline ]; then
      kill -KILL "${pids[@]}" 2>/dev/null
    fi
    sleep 1
  done
  : > "$root/status.txt"
  for experiment in bc7db4a2 c9335bce; do
    local code=0 state
    wait "${pids[$experiment]}" || code=$?
    if [ $code = 0 ]; then
      state=finished
    elif [ $code = 2 ] && tail -n 1 "$root/$experiment.out" | grep -q 'interrupted (SIGTERM)'; then
      state='stopped at the budget, snapshot written; the next command resumes it'
    elif [ $code = 143 ] && [ $signalled = 1 ]; then  # SIGTERM before its training loop began
      state='stopped at the budget before training; its newest snapshot stays'
    else
      state="failed (exit status $code)"
      status=1
    fi
    local newest
    newest=$(cd "$root/$experiment" 2>/dev/null && ls snapshot_iter_* 2>/dev/null | sort -t_ -k3 -n \
             | tail -n 1)
    echo "$experiment: $state; newest snapshot: ${newest:-none}" | tee -a "$root/status.txt"
  done
  tar -czf "$out/records.tar.gz" --exclude='snapshot_iter_*' --exclude='tmpsnapshot_iter_*' \
    --exclude='model.npz' --exclude='.lock' --exclude='.*.tmp' -C "$root" . || return 1
  local size
  size=$(stat -c %s "$out/records.tar.gz")
  echo "gpu_machine.sh: $out/records.tar.gz, $size bytes"
  if [ "$size" -gt $max_bytes ]; then
    echo "gpu_machine.sh: the archive is larger than 16 MiB" >&2
    status=1
  fi
  return $status
}

case "${1:-}" in
  wheels) shift; wheels "$@" ;;
  records) shift; records "$@" ;;
  -h|--help) sed -n '2,22p' "$0" ;;
  *) run "$@" ;;
esac
