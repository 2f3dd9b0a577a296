#!/usr/bin/env bash
# One command that prepares a machine for saim_mm: creates .venv/ at the repository root and installs
# torch, the OpenMMLab stack (building mmcv 2.1.0 with its compiled ops from source), the test tools and
# saim_mm itself in editable mode.
#
# Where torch sees a GPU, mmcv's CUDA ops are compiled, which needs nvcc of torch's CUDA version; without
# a GPU (or with SAIM_MM_MMCV=cpu) the ops are CPU-only. tools/misc/mmcv_build_plan.py decides, and stops
# the set-up before the long build, saying what to install, when the build cannot succeed.
# The mmcv wheel is built once per (python, torch, CPU-only or CUDA version) and cached outside the
# repository in
#   ${SAIM_MM_CACHE:-$HOME/.cache/saim_mm}/wheels/mmcv-<mmcv>-torch<torch>-<python>-<cpu|cu128|...>
# so that a second set-up on the same machine (e.g. CI in a fresh clone) takes minutes instead of a rebuild,
# and a CPU-only wheel is never installed on a GPU machine.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null 2>&1 || PY=python3
CACHE="${SAIM_MM_CACHE:-$HOME/.cache/saim_mm}"
WHEELS="$CACHE/wheels"
mkdir -p "$WHEELS"

log() { printf '[setup %(%H:%M:%S)T] %s\n' -1 "$*"; }

if [ ! -x .venv/bin/python ]; then
  log "creating .venv with $("$PY" --version)"
  "$PY" -m venv .venv
fi
VPY="$ROOT/.venv/bin/python"
# Quiet pip. Dropped from its stderr: warnings about local indexes named by a machine's pip config that
# are absent, and the expected conflict report about torch's setuptools>=77 metadata (mmcv's build and
# mmengine need setuptools<70 for pkg_resources; torch does not need setuptools at run time).
pip_i() {
  "$VPY" -m pip install --disable-pip-version-check -q "$@" 2> >(grep -v -e 'is ignored: it is neither' \
    -e "pip's dependency resolver does not currently take into account" \
    -e 'torch .* requires setuptools>=' >&2)
}

log "installing build tools and torch"
pip_i -r requirements/runtime.txt
# After torch: torch pulls a setuptools without pkg_resources, which mmcv's setup.py needs.
pip_i -r requirements/build.txt

TORCH_VER="$("$VPY" -c 'import torch; print(torch.__version__.split("+")[0])')"
MMCV_VER="$(sed -n 's/^mmcv==\(.*\)$/\1/p' requirements/mminstall.txt)"
# MMCV_KEY (cpu / cu<ver>), MMCV_DIR, MMCV_WHL (a cached wheel or empty), FORCE_CUDA, CUDA_VISIBLE_DEVICES
# or CUDA_HOME; exits with what to install when the build cannot succeed here
PLAN="$("$VPY" tools/misc/mmcv_build_plan.py --wheels "$WHEELS" --mmcv "$MMCV_VER")"
eval "$PLAN"

if [ -z "$MMCV_WHL" ]; then
  log "building mmcv $MMCV_VER with $MMCV_KEY ops for torch $TORCH_VER; this takes 15 min on 2 cores, once"
  BUILD="$(mktemp -d)"
  trap 'rm -rf "$BUILD"' EXIT
  "$VPY" -m pip download --disable-pip-version-check -q --no-deps --no-binary :all: --no-build-isolation \
    "mmcv==$MMCV_VER" -d "$BUILD"
  tar -xzf "$BUILD"/mmcv-"$MMCV_VER".tar.gz -C "$BUILD"
  SRC="$BUILD/mmcv-$MMCV_VER"
  # torch >= 2.6 headers need C++20; mmcv 2.1.0 asks for C++14/17.
  sed -i -e 's/-std=c++14/-std=c++20/g' -e 's/-std=c++17/-std=c++20/g' "$SRC/setup.py"
  BUILD_ENV=(MMCV_WITH_OPS=1 FORCE_CUDA="$FORCE_CUDA" MAX_JOBS="$(nproc)")
  if [ "$FORCE_CUDA" = 1 ]; then BUILD_ENV+=(CUDA_HOME="$CUDA_HOME"); else BUILD_ENV+=(CUDA_VISIBLE_DEVICES=); fi
  (cd "$SRC" && env "${BUILD_ENV[@]}" \
    "$VPY" -m pip wheel --disable-pip-version-check -q --no-build-isolation --no-deps . -w "$BUILD/dist")
  mkdir -p "$MMCV_DIR"
  cp "$BUILD"/dist/mmcv-*.whl "$MMCV_DIR/"
  MMCV_WHL="$(ls "$MMCV_DIR"/mmcv-*.whl | head -n 1)"
  log "cached $MMCV_WHL"
else
  log "using cached mmcv wheel $MMCV_WHL"
fi

log "installing mmcv, the OpenMMLab stack and test tools"
# One resolution over all requirements, so that runtime pins (numpy<2) hold against later packages.
pip_i "$MMCV_WHL" -r requirements/runtime.txt -r requirements/mminstall.txt -r requirements/tests.txt
# mmengine 0.10.7 imports pkg_resources at run time (e.g. for `mmpretrain::` base configs), which newer
# setuptools (pulled in by torch's metadata) no longer ship.
pip_i -r requirements/build.txt
log "installing saim_mm (editable)"
pip_i --no-deps --no-build-isolation -e .
"$VPY" -c 'import mmcv.ops, mmdet, mmseg, mmpretrain, saim_mm; print("saim_mm", saim_mm.__version__, "ready; mmcv", mmcv.__version__)'
log "done: activate with 'source .venv/bin/activate'"
