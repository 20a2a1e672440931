#!/usr/bin/env bash
# One prepared GPU run: a thin wrapper of scripts/gpu_run.py (read its docstring). On the GPU
# machine, from the repository root, with .whl/ carried along (scripts/fetch_gpu_wheels.sh):
#
#   bash scripts/gpu_run.sh --out "$OUT/gpu_run" --budget-min 9 --pack
#
# Here, on the CPU, the same path at tiny sizes:  bash scripts/gpu_run.sh --dry-run --out /tmp/gpu_dry
# vdm_lite runs from this tree (PYTHONPATH); nothing is installed into the Python environment.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-$(command -v python3 || command -v python)}"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1 TQDM_DISABLE=1
cd "$ROOT" && exec "$PY" scripts/gpu_run.py "$@"
