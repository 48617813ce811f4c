#!/usr/bin/env bash
# The GPU checks on a GPU machine that has no network (bench/README.md, "On a GPU machine
# without network").  Two steps, one script:
#
#   bash bench/gpu_machine.sh wheels [DIR]   here, with network: the wheels the GPU machine lacks
#                                            into DIR (default .whl), for CPython 3.12 on x86-64
#   bash bench/gpu_machine.sh [DIR]          there, from the repository root, with DIR carried:
#                                            install them, run `pytest -m gpu` and
#                                            bench/train_step.py --gpu 0 for both experiments
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

run() {
  local dir=${1:-.whl} out=${OUT:-results/gpu-machine} python=${PYTHON:-python3} status=0
  local site=/tmp/gpu-machine-site
  mkdir -p "$out" || return 1
  "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$site" "$dir"/*.whl || return 1
  # The repository root too: the experiments' train.py, run as scripts, import common from it.
  export PYTHONPATH="$site:$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1

  { nvidia-smi; "$python" -m pip list 2>/dev/null | grep -i -E '^(cupy|numpy|nvidia|setuptools)'
    "$python" -m common.env; } > "$out/environment.txt" 2>&1
  cat "$out/environment.txt"

  "$python" -m pytest -m gpu -v -rs -s -p no:cacheprovider 2>&1 | tee "$out/pytest-gpu.txt"
  [ "${PIPESTATUS[0]}" = 0 ] || status=1

  # The records' minibatches: 50 (bc7db4a2) and 100 (c9335bce).
  local experiment batchsize
  for job in 'bc7db4a2 50' 'c9335bce 100'; do
    read -r experiment batchsize <<< "$job"
    "$python" bench/train_step.py "$experiment" --gpu 0 --batchsize "$batchsize" --iterations 5 \
      --json "$out/train_step_$experiment.json" 2>&1 | tee "$out/train_step_$experiment.txt"
    [ "${PIPESTATUS[0]}" = 0 ] || status=1
  done
  echo "gpu_machine.sh: results in $out"
  return $status
}

case "${1:-}" in
  wheels) shift; wheels "$@" ;;
  -h|--help) sed -n '2,16p' "$0" ;;
  *) run "$@" ;;
esac
