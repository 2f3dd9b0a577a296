#!/usr/bin/env bash
# The GPU check of saim_mm in one command (docs/gpu_check.md): installs the wheels made by
# tools/misc/build_device_wheels.sh into a temporary folder (no package index is asked: --no-index) that
# the machine's Python sees before its own packages, so that the machine's torch is used, then runs
# tools/analysis/gpu_check.py with the remaining options.
#
#   bash tools/analysis/gpu_check.sh [--wheels work_dirs/device_wheels] [--site DIR] [gpu_check.py options]
#   e.g. bash tools/analysis/gpu_check.sh --wheels work_dirs/device_wheels --out-dir "$OUT"
#
# --site DIR installs into DIR instead of a temporary folder. PYTHON (default python3) is the interpreter.
# Without a CUDA device (and without --device cpu) it prints one line and exits with status 2 before
# installing anything.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"
WHEELS="work_dirs/device_wheels"
SITE=""
ARGS=()
CPU=0
while [ $# -gt 0 ]; do
  case "$1" in
    --wheels) WHEELS="${2:?--wheels needs a folder}"; shift 2 ;;
    --site) SITE="${2:?--site needs a folder}"; shift 2 ;;
    --device) [ "${2:-}" = cpu ] && CPU=1; ARGS+=("$1" "${2:-}"); shift 2 ;;
    *) ARGS+=("$1"); shift ;;
  esac
done

if [ "$CPU" = 0 ]; then
  set +e
  "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 2)' 2>/dev/null
  rc=$?
  set -e
  if [ "$rc" != 0 ]; then
    echo "gpu_check: no CUDA device is visible to $PY (or it has no torch); nothing measured."
    exit 2
  fi
fi

shopt -s nullglob
WHLS=("$WHEELS"/*.whl)
FALLBACK=("$WHEELS"/fallback/*.whl)
shopt -u nullglob
if [ "${#WHLS[@]}" = 0 ]; then
  echo "gpu_check: no wheels in $WHEELS; make them first: bash tools/misc/build_device_wheels.sh $WHEELS" >&2
  exit 1
fi
if [ -z "$SITE" ]; then
  SITE="$(mktemp -d)/site"
  trap 'rm -rf "$(dirname "$SITE")"' EXIT
fi

# the wheels alone, ignoring any pip configuration of the machine (indexes, find-links, constraints)
pip_install() {
  env -u PIP_FIND_LINKS -u PIP_INDEX_URL -u PIP_EXTRA_INDEX_URL -u PIP_CONSTRAINT PIP_CONFIG_FILE=/dev/null \
    PIP_ROOT_USER_ACTION=ignore "$PY" -m pip install --no-index --no-deps --no-compile \
    --disable-pip-version-check -q --target "$SITE" "$@"
}
t0=$SECONDS
pip_install "${WHLS[@]}"
# mmengine reads `mmpretrain::` base configs through pkg_resources and its Runner imports distutils; Python
# >= 3.12 has distutils only through setuptools' shim, and setuptools >= 81 has no pkg_resources: where the
# machine's Python lacks either, setuptools from fallback/ goes into the target, and where its distutils shim
# (a .pth file, which PYTHONPATH folders do not run) is needed, gpu_check.py adds the target as a site folder
needs() { PYTHONPATH="$SITE" "$@" -c 'import pkg_resources, distutils.errors' >/dev/null 2>&1; }
if ! needs "$PY"; then
  if [ "${#FALLBACK[@]}" = 0 ]; then
    echo "gpu_check: the Python lacks pkg_resources or distutils, and $WHEELS/fallback has no setuptools" >&2
    exit 1
  fi
  pip_install "${FALLBACK[@]}"
  if ! needs "$PY"; then
    export GPU_CHECK_SITE_DIR="$SITE"
    PYTHONPATH="$SITE" "$PY" -c "import site; site.addsitedir('$SITE'); import pkg_resources, distutils.errors" \
      || { echo "gpu_check: pkg_resources or distutils still missing with $WHEELS/fallback installed" >&2; exit 1; }
  fi
fi
echo "gpu_check: installed ${#WHLS[@]} wheels into $SITE in $((SECONDS - t0)) s"
export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
set +e
"$PY" tools/analysis/gpu_check.py "${ARGS[@]}"
exit $?
