#!/usr/bin/env bash
# Every wheel that tools/analysis/gpu_check.sh needs on a machine without a package registry that already
# has Python, torch and a scientific stack (the lent GPU machine: Python 3.12, torch 2.11 with CUDA):
#
#   bash tools/misc/build_device_wheels.sh OUT_DIR [--python-version 3.12] [--pin-from PYTHON]
#                                          [--max-mib 64] [--no-cache]
#
# OUT_DIR receives
#   - saim_mm (a wheel of this working tree);
#   - mmengine, mmpretrain and mmcv at the pins of requirements/mminstall.txt. mmcv is built here from its
#     source package with MMCV_WITH_OPS=0: pure Python, no compiled ops. Pre-training does not need them:
#     a SAIM pre-training step imports mmcv's arraymisc, cnn, image, transforms, utils, video and
#     visualization modules, all pure Python, and the imports there that reach mmcv.ops
#     (mmcv.cnn.bricks.transformer's MultiScaleDeformableAttention, mmcv.utils.env) catch the
#     ModuleNotFoundError (tests/test_tools/test_device_wheels.py runs such a step from these wheels).
#     mmcv's setup.py names such a build 'mmcv-lite'; the wheel is named 'mmcv' here so that the installed
#     metadata satisfies saim_mm's version check and mmpretrain's. mmdet and mmsegmentation are left out:
#     they import mmcv.ops at import time;
#   - the pure-Python dependencies of those, for --python-version, that the device does not have
#     (DEVICE_HAS below: the package list of the device image in the device tool's KINDS.md, 2026-11-17);
#     from PyPI wheels where they exist, source packages built to wheels here otherwise. Their versions are
#     those installed in --pin-from (default: the repository's .venv, the stack the tests ran with) where
#     it has them, else the newest that fits;
#   - fallback/: setuptools from requirements/build.txt (setuptools<70). mmengine imports pkg_resources
#     for `mmpretrain::` base configs, which setuptools>=81 no longer ships, and its Runner imports
#     distutils (Python >= 3.12: setuptools' shim); gpu_check.sh installs it only where the device's Python
#     cannot import either.
# The third-party wheels are cached in ${SAIM_MM_CACHE:-$HOME/.cache/saim_mm}/device_wheels/ under a key of
# the requirements, the pins, the Python version and this script; saim_mm's wheel is built anew each time.
# The total (wheels plus the working tree that travels with a device call) must stay within --max-mib.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PY="${PYTHON:-python3}"  # runs pip here (downloads and builds); any Python >= 3.8 with pip
PYVER=3.12
PIN_FROM=""
MAX_MIB=64
USE_CACHE=1
OUT=""
# The device image's Python packages (normalised names); a dependency named here is not carried.
DEVICE_HAS="absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs botorch
build certifi charset-normalizer chex click cloudpickle cmake colorama contourpy coverage cuda-bindings cuda-core
cuda-pathfinder cuda-toolkit cupy-cuda13x cycler cython diffrax e3nn einops equinox etils execnet filelock
flatbuffers flax fonttools formulaic frozenlist fsspec gpytorch grpcio h11 h5py hf-xet httpcore httpx
huggingface-hub humanize hypothesis idna imageio iniconfig interface-meta jax jax-cuda13-pjrt jax-cuda13-plugin
jaxlib jaxtyping jinja2 joblib kiwisolver lazy-loader lightning lightning-utilities linear-operator lineax
llvmlite lxml markdown markdown-it-py markupsafe matplotlib mdurl meson ml-dtypes mpi4py mpmath msgpack multidict
multipledispatch mypy-extensions nanobind narwhals networkx ninja numba numba-cuda numpy numpyro nvidia-cublas
nvidia-cuda-cupti nvidia-cuda-nvrtc nvidia-cuda-runtime nvidia-cudnn-cu13 nvidia-cufft nvidia-cufile
nvidia-curand nvidia-cusolver nvidia-cusparse nvidia-cusparselt-cu13 nvidia-ml-py nvidia-nccl-cu13
nvidia-nvjitlink nvidia-nvshmem-cu13 nvidia-nvtx onnx onnx-ir onnxruntime onnxscript opencv-python-headless optax
opt-einsum opt-einsum-fx optimistix orbax-checkpoint packaging pandas pathspec patsy peft pillow pip pluggy
portalocker prometheus-client propcache protobuf psutil pyarrow pybind11 py-cpuinfo pygments pyparsing
pyproject-hooks pyre-extensions pytest pytest-benchmark pytest-cov pytest-mock pytest-timeout pytest-xdist
python-dateutil pytorch-lightning pyyaml regex requests rich sacrebleu safetensors scikit-build-core scikit-image
scikit-learn scipy seaborn sentencepiece sentence-transformers setuptools shellingham simplejson six
sortedcontainers statsmodels sympy tabulate tensorboard tensorboard-data-server tensorstore threadpoolctl
tifffile tiktoken timm tokenizers toolz torch torchaudio torchdiffeq torch-geometric torchmetrics torchvision
tqdm transformers treescope triton typer typing-extensions typing-inspect urllib3 uvloop wadler-lindig werkzeug
wheel wrapt xarray xxhash yarl zipp"

die() { echo "build_device_wheels: $*" >&2; exit 1; }
log() { printf '[device wheels %(%H:%M:%S)T] %s\n' -1 "$*"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --python-version) PYVER="${2:?--python-version needs a value, e.g. 3.12}"; shift 2 ;;
    --pin-from) PIN_FROM="${2:?--pin-from needs a Python interpreter}"; shift 2 ;;
    --max-mib) MAX_MIB="${2:?--max-mib needs a number}"; shift 2 ;;
    --no-cache) USE_CACHE=0; shift ;;
    -h|--help) sed -n '2,30p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) [ -z "$OUT" ] || die "one OUT_DIR only, got '$OUT' and '$1'"; OUT="$1"; shift ;;
  esac
done
[ -n "$OUT" ] || die "usage: $0 OUT_DIR [--python-version 3.12] [--pin-from PYTHON] [--max-mib 64] [--no-cache]"
[[ "$PYVER" =~ ^3\.[0-9]+$ ]] || die "--python-version must look like 3.12, got '$PYVER'"
if [ -z "$PIN_FROM" ] && [ -x "$ROOT/.venv/bin/python" ]; then PIN_FROM="$ROOT/.venv/bin/python"; fi
command -v "$PY" >/dev/null || die "no '$PY' to run pip with (set PYTHON)"

mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
rm -f "$OUT"/*.whl
rm -rf "$OUT/fallback"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# pip here: the machine's configured index; the quiet flags drop notices about absent local indexes.
pip_q() {
  "$PY" -m pip "$@" --disable-pip-version-check -q 2> >(grep -v -e 'is ignored: it is neither' >&2)
}
# setuptools<70 in every isolated build: mmcv's setup.py imports pkg_resources
grep -E '^setuptools' "$ROOT/requirements/build.txt" > "$WORK/build-constraints.txt" \
  || die "requirements/build.txt names no setuptools pin"
export PIP_CONSTRAINT="$WORK/build-constraints.txt"

pin_of() {  # the '==' / '<' pin of a package in a requirements file, e.g. pin_of mminstall.txt mmcv
  grep -E "^$2([=<>!~ ]|$)" "$ROOT/requirements/$1" | head -n 1 | sed 's/[[:space:]]*#.*//'
}
TOP=()
for name in mmengine mmpretrain mmcv; do
  req="$(pin_of mminstall.txt "$name")"
  [ -n "$req" ] || die "requirements/mminstall.txt has no line for $name"
  TOP+=("$req")
done
MMCV_VER="$(sed -n 's/^mmcv==\(.*\)$/\1/p' "$ROOT/requirements/mminstall.txt")"
[ -n "$MMCV_VER" ] || die "requirements/mminstall.txt must pin mmcv with '==', e.g. mmcv==2.1.0"
SETUPTOOLS_REQ="$(pin_of build.txt setuptools)"

# versions installed in --pin-from, "name==version" per line (normalised names)
PINS="$WORK/pins.txt"
if [ -n "$PIN_FROM" ]; then
  "$PIN_FROM" - > "$PINS" <<'EOF' || die "could not list the packages of --pin-from"
import re
from importlib import metadata
for dist in metadata.distributions():
    name = dist.metadata['Name']
    if name:
        print(f"{re.sub(r'[-_.]+', '-', name).lower()}=={dist.version}")
EOF
  sort -u -o "$PINS" "$PINS"
else
  : > "$PINS"
fi

KEY="$(cat "$ROOT/requirements/mminstall.txt" "$ROOT/requirements/build.txt" "$PINS" "${BASH_SOURCE[0]}" \
  <(echo "$PYVER") | sha256sum | cut -c1-16)"
CACHE="${SAIM_MM_CACHE:-$HOME/.cache/saim_mm}/device_wheels/py$PYVER-$KEY"

log "saim_mm wheel from $ROOT"
SRC="$WORK/saim_mm-src"
mkdir -p "$SRC"
cp -r "$ROOT/setup.py" "$ROOT/setup.cfg" "$ROOT/README.md" "$ROOT/requirements" "$ROOT/saim_mm" "$SRC/"
find "$SRC" -name __pycache__ -prune -exec rm -rf {} +
pip_q wheel --no-deps -w "$OUT" "$SRC"

if [ "$USE_CACHE" = 1 ] && [ -f "$CACHE/complete" ]; then
  log "third-party wheels from the cache $CACHE"
  cp "$CACHE"/*.whl "$OUT/"
  cp -r "$CACHE/fallback" "$OUT/"
else
  DL="$WORK/third_party"
  mkdir -p "$DL"
  log "mmcv $MMCV_VER without compiled ops (MMCV_WITH_OPS=0)"
  pip_q download --no-deps --no-binary :all: "mmcv==$MMCV_VER" -d "$WORK/mmcv-sdist"
  tar -xzf "$WORK/mmcv-sdist/mmcv-$MMCV_VER.tar.gz" -C "$WORK"
  MMCV_SRC="$WORK/mmcv-$MMCV_VER"
  # the distribution keeps the name 'mmcv' (see the header)
  sed -i "s/name='mmcv' if os.getenv('MMCV_WITH_OPS', '1') == '1' else 'mmcv-lite',/name='mmcv',/" \
    "$MMCV_SRC/setup.py"
  grep -q "^    name='mmcv',$" "$MMCV_SRC/setup.py" \
    || die "mmcv $MMCV_VER's setup.py has no 'name=... mmcv-lite' line to keep the name 'mmcv'; check it"
  MMCV_WITH_OPS=0 pip_q wheel --no-deps -w "$DL" "$MMCV_SRC"
  MMCV_WHL="$(ls "$DL"/mmcv-"$MMCV_VER"-*.whl 2>/dev/null | head -n 1)"
  [ -n "$MMCV_WHL" ] || die "building mmcv $MMCV_VER gave no mmcv-$MMCV_VER-*.whl"
  case "$(basename "$MMCV_WHL")" in *-none-any.whl) ;; *) die "$MMCV_WHL is not a pure-Python wheel" ;; esac
  if "$PY" -m zipfile -l "$MMCV_WHL" | grep -qE '\.(so|pyd)[[:space:]]'; then
    die "$MMCV_WHL holds compiled code although MMCV_WITH_OPS=0"
  fi

  log "dependencies for Python $PYVER (pins from ${PIN_FROM:-nowhere: newest versions})"
  "$PY" - "$DL" "$PYVER" "$PINS" "$MMCV_WHL" "$DEVICE_HAS" "$SETUPTOOLS_REQ" "${TOP[@]}" <<'EOF'
"""Walk the requirements of the top packages; download (or build) a wheel of each one the device lacks."""
import glob
import os
import re
import subprocess
import sys
import zipfile

try:
    from packaging.markers import Marker
    from packaging.requirements import Requirement
    from packaging.specifiers import SpecifierSet
    from packaging.version import Version
except ImportError:  # a bare Python: pip's copy
    from pip._vendor.packaging.markers import Marker  # noqa: F401
    from pip._vendor.packaging.requirements import Requirement
    from pip._vendor.packaging.specifiers import SpecifierSet
    from pip._vendor.packaging.version import Version

dest, pyver, pins_file, mmcv_whl, device_has, setuptools_req, *top = sys.argv[1:]
norm = lambda name: re.sub(r'[-_.]+', '-', name).lower()  # noqa: E731
have = set(device_has.split())
# a requirement the device meets under another name (both provide cv2)
satisfied_by = {'opencv-python': 'opencv-python-headless'}
pins = dict(line.strip().split('==', 1) for line in open(pins_file) if '==' in line)
env = dict(python_version=pyver, python_full_version=pyver + '.0', implementation_name='cpython',
           implementation_version=pyver + '.0', platform_python_implementation='CPython',
           sys_platform='linux', platform_system='Linux', platform_machine='x86_64', os_name='posix',
           platform_release='', platform_version='', extra='')
tag_args = ['--python-version', pyver, '--implementation', 'cp', '--only-binary=:all:'] + [
    a for p in ('manylinux_2_28_x86_64', 'manylinux_2_17_x86_64', 'manylinux2014_x86_64') for a in ('--platform', p)]


def metadata_of(wheel):
    with zipfile.ZipFile(wheel) as z:
        text = z.read(next(n for n in z.namelist() if n.endswith('.dist-info/METADATA'))).decode()
    name = re.search(r'^Name: (.+)$', text, re.M).group(1).strip()
    version = re.search(r'^Version: (.+)$', text, re.M).group(1).strip()
    return norm(name), version, re.findall(r'^Requires-Dist: (.+)$', text, re.M)


def pip(*args):
    return subprocess.run([sys.executable, '-m', 'pip', *args, '--disable-pip-version-check', '-q'],
                          capture_output=True, text=True)


def fetch(name, spec, folder):
    """One wheel of ``name`` matching ``spec`` in ``folder``: the pinned version if it fits, else the newest
    that does; a source package is built to a wheel here where PyPI has no wheel for the device."""
    want = f'{name}=={pins[name]}' if name in pins and Version(pins[name]) in spec else f'{name}{spec}'
    before = set(os.listdir(folder))
    got = pip('download', '--no-deps', '-d', folder, *tag_args, want)
    built = got.returncode != 0
    if built:
        src = os.path.join(dest, '.sdist', name)
        got = pip('download', '--no-deps', '--no-binary', ':all:', '-d', src, want)
        if got.returncode == 0:
            got = pip('wheel', '--no-deps', '-w', folder, *glob.glob(os.path.join(src, '*')))
        if got.returncode != 0:
            sys.exit(f'build_device_wheels: no wheel or buildable source package of {want} for Python '
                     f'{pyver}:\n{got.stderr[-2000:]}')
    new = [f for f in set(os.listdir(folder)) - before if f.endswith('.whl')]
    if len(new) != 1:
        sys.exit(f'build_device_wheels: expected one new wheel for {want}, got {sorted(new)}')
    if built and not new[0].endswith('-none-any.whl'):
        sys.exit(f'build_device_wheels: {want} has no wheel for Python {pyver} and its source package builds '
                 f'compiled code ({new[0]}), which would be for this machine\'s Python only')
    return os.path.join(folder, new[0])


resolved = {}  # name -> (version, requirements)
specs = {}  # name -> SpecifierSet, all parents' specifiers together
queue = []


def want(req_text, parent):
    req = Requirement(req_text)
    if req.marker is not None and not req.marker.evaluate(env):
        return
    name = norm(req.name)
    if name in have or satisfied_by.get(name) in have:
        return
    specs[name] = specs.get(name, SpecifierSet()) & req.specifier
    if name in resolved:
        if Version(resolved[name][0]) not in specs[name]:
            sys.exit(f'build_device_wheels: {parent} needs {req}, but {name}=={resolved[name][0]} was chosen '
                     'for another package; pin a version that fits both in requirements/')
        return
    if name not in queue:
        queue.append(name)


name, version, reqs = metadata_of(mmcv_whl)
resolved[name] = (version, reqs)
specs[name] = SpecifierSet(f'=={version}')
for r in top:
    want(r, 'requirements/mminstall.txt')
for r in reqs:
    want(r, os.path.basename(mmcv_whl))
while queue:
    name = queue.pop(0)
    wheel = fetch(name, specs[name], dest)
    got, version, reqs = metadata_of(wheel)
    if got != name:
        sys.exit(f'build_device_wheels: asked for {name}, pip gave {os.path.basename(wheel)}')
    resolved[name] = (version, reqs)
    for r in reqs:
        want(r, f'{name}=={version}')
for name, (version, _) in sorted(resolved.items()):
    print(f'  {name}=={version}')
# setuptools with pkg_resources (see the header), installed on the device only where it is missing
req = Requirement(setuptools_req)
os.makedirs(os.path.join(dest, 'fallback'), exist_ok=True)
fallback = fetch('setuptools', req.specifier, os.path.join(dest, 'fallback'))
print(f'  fallback: {os.path.basename(fallback)}')
EOF
  rm -rf "$DL/.sdist"
  if [ "$USE_CACHE" = 1 ]; then
    rm -rf "$CACHE"
    mkdir -p "$CACHE"
    cp "$DL"/*.whl "$CACHE/"
    cp -r "$DL/fallback" "$CACHE/"
    touch "$CACHE/complete"
  fi
  cp "$DL"/*.whl "$OUT/"
  cp -r "$DL/fallback" "$OUT/"
fi

# sizes: the wheels, and what else a device call sends (tracked and untracked-not-ignored files)
echo "wheels in $OUT:"
(cd "$OUT" && du -b -- *.whl fallback/*.whl | sort -k2 | awk '{printf "  %9.2f MiB  %s\n", $1 / 1048576, $2}')
WHEEL_BYTES="$(du -cb "$OUT"/*.whl "$OUT"/fallback/*.whl | tail -n 1 | cut -f1)"
TREE_BYTES=0
if git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1; then
  TREE_BYTES="$(cd "$ROOT" && git ls-files -co --exclude-standard -z | du -cb --files0-from=- 2>/dev/null \
    | tail -n 1 | cut -f1)"
fi
TOTAL=$((WHEEL_BYTES + TREE_BYTES))
awk -v w="$WHEEL_BYTES" -v t="$TREE_BYTES" -v m="$MAX_MIB" 'BEGIN {
  printf "total: %.2f MiB of wheels + %.2f MiB of working tree = %.2f MiB (limit %s MiB)\n",
    w / 1048576, t / 1048576, (w + t) / 1048576, m }'
if [ "$TOTAL" -gt $((MAX_MIB * 1048576)) ]; then
  die "the wheels and the working tree come to more than $MAX_MIB MiB, what one device call may carry"
fi
