#!/usr/bin/env bash
# Fill .whl/ (git-ignored) with the wheels that scripts/gpu_run.py installs offline on a GPU
# machine that reaches no package registry: the peer library of benchmarks/bench_vs_peer.py,
# video-diffusion-pytorch 0.7.0, and its small pure-Python dependencies. All four are
# py3-none-any wheels, so one download serves any Python >= 3.8 on any platform; torch,
# torchvision and the rest are expected on the GPU machine already (they are not fetched).
#
#   bash scripts/fetch_gpu_wheels.sh            # -> .whl/
#   bash scripts/fetch_gpu_wheels.sh DIR        # -> DIR/
#
# Then carry .whl/ to the GPU machine (it is ignored by git, so name it in the copy/carry list).
set -euo pipefail
cd "$(dirname "$0")/.."
DEST="${1:-.whl}"
mkdir -p "$DEST"
# pinned: the versions this repository's benchmark was checked with
PKGS=(video-diffusion-pytorch==0.7.0 einops==0.8.2 einops-exts==0.0.4 rotary-embedding-torch==0.9.1)
python -m pip download --no-deps --only-binary=:all: --python-version 3.12 -d "$DEST" "${PKGS[@]}"
ls -l "$DEST"
