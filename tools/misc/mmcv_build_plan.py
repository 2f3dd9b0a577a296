"""Decide how tools/setup_env.sh gets mmcv: CPU-only or CUDA build, the wheel-cache folder, and whether the
machine has what the build needs. Prints shell assignments for ``eval``; exits with status 1 and says what
to install when something is missing, before the long build starts.

    python tools/misc/mmcv_build_plan.py --wheels ~/.cache/saim_mm/wheels --mmcv 2.1.0

The decision:

- torch sees no GPU (or ``SAIM_MM_MMCV=cpu``): a CPU-only build (``FORCE_CUDA=0``, GPUs hidden from the
  build); cache key ``cpu``.
- torch sees a GPU: mmcv's CUDA ops are compiled (``FORCE_CUDA=1``), which needs ``nvcc`` from a CUDA
  toolkit of torch's CUDA major version (torch's extension builder refuses another major version and
  accepts another minor one), found as ``$CUDA_HOME/bin/nvcc`` (or ``$CUDA_PATH``, or the toolkit of the
  ``nvcc`` on ``PATH``) with its headers; cache key ``cu<torch's CUDA version>``, e.g. ``cu128``.
- Both need a C++ compiler (``$CXX`` or ``c++``/``g++``).

The cached wheel lives in ``<wheels>/mmcv-<mmcv>-torch<torch>-<python tag>-<key>``, so a CPU-only wheel is
never installed on a GPU machine. Set-ups before the key existed cached CPU-only wheels (they built with
``FORCE_CUDA=0`` and no GPU) as ``mmcv-<mmcv>-torch<torch>-<python tag>``; a CPU-only plan uses such a wheel
instead of building again, a CUDA plan never does.

Every input can be given on the command line (``--torch-cuda``, ``--gpu``, ``--nvcc``, ``--cxx``, ...), which
is how the tests simulate GPU machines; by default they are read from torch and the environment.
"""
import argparse
import glob
import os
import os.path as osp
import re
import shlex
import shutil
import subprocess
import sys
from typing import Dict, Optional


class PlanError(RuntimeError):
    """Something the mmcv build needs is missing; the message says what to install."""


def nvcc_version(nvcc: str) -> Optional[str]:
    """``'12.8'`` from ``nvcc --version`` ("Cuda compilation tools, release 12.8, V12.8.93"), else None."""
    try:
        out = subprocess.run([nvcc, '--version'], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r'release (\d+)\.(\d+)', out)
    return f'{match.group(1)}.{match.group(2)}' if match else None


def find_cuda_home(env: Dict[str, str]) -> Optional[str]:
    """The CUDA toolkit the build would use: ``$CUDA_HOME``, ``$CUDA_PATH``, the toolkit of ``nvcc`` on
    ``PATH`` (through wrapper scripts: the folder whose ``bin/nvcc`` and ``include/cuda_runtime.h`` exist),
    or ``/usr/local/cuda``."""
    for key in ('CUDA_HOME', 'CUDA_PATH'):
        if env.get(key):
            return env[key]
    candidates = []
    nvcc = shutil.which('nvcc', path=env.get('PATH', ''))
    if nvcc:
        candidates.append(osp.dirname(osp.dirname(osp.realpath(nvcc))))
    candidates.append('/usr/local/cuda')
    for home in candidates:
        if osp.isfile(osp.join(home, 'bin', 'nvcc')) and osp.isfile(osp.join(home, 'include', 'cuda_runtime.h')):
            return home
    return candidates[0] if nvcc else None


def cache_dir(wheels: str, mmcv: str, torch: str, py_tag: str, key: Optional[str] = None) -> str:
    """``<wheels>/mmcv-<mmcv>-torch<torch>-<py_tag>[-<key>]`` (no key: the name before keys existed)."""
    name = f'mmcv-{mmcv}-torch{torch}-{py_tag}'
    return osp.join(wheels, f'{name}-{key}' if key else name)


def cached_wheel(folder: str) -> str:
    wheels = sorted(glob.glob(osp.join(folder, 'mmcv-*.whl')))
    return wheels[0] if wheels else ''


def plan(*, wheels: str, mmcv: str, torch_version: str, py_tag: str, torch_cuda: Optional[str], gpu: bool,
         cuda_home: Optional[str], cxx: Optional[str], force_cpu: bool = False) -> Dict[str, str]:
    """The build plan as shell variables.

    Args:
        wheels (str): The wheel cache folder.
        mmcv (str): mmcv version to build, e.g. ``'2.1.0'``.
        torch_version (str): torch's version without the local part, e.g. ``'2.14.1'``.
        py_tag (str): e.g. ``'cp311'``.
        torch_cuda (str, optional): ``torch.version.cuda`` (None for a CPU-only torch).
        gpu (bool): ``torch.cuda.is_available()``.
        cuda_home (str, optional): The CUDA toolkit found (see :func:`find_cuda_home`); its
            ``bin/nvcc`` is run for its version.
        cxx (str, optional): The C++ compiler found.
        force_cpu (bool): Build CPU-only ops even where a GPU is visible.

    Returns:
        dict: ``MMCV_KEY`` (``cpu`` / ``cu<ver>``), ``MMCV_DIR`` (cache folder for a new wheel),
        ``MMCV_WHL`` (a usable cached wheel, or empty), ``FORCE_CUDA``, ``CUDA_HOME`` (CUDA builds) and
        ``CUDA_VISIBLE_DEVICES`` (set empty for CPU-only builds, so that mmcv's build sees no GPU).

    Raises:
        PlanError: When the build cannot succeed here; the message says what to install or set.
    """
    use_cuda = gpu and torch_cuda is not None and not force_cpu
    key = f'cu{torch_cuda.replace(".", "")}' if use_cuda else 'cpu'
    out = dict(MMCV_KEY=key, MMCV_DIR=cache_dir(wheels, mmcv, torch_version, py_tag, key))
    out['MMCV_WHL'] = cached_wheel(out['MMCV_DIR'])
    if use_cuda:
        out.update(FORCE_CUDA='1', CUDA_HOME=cuda_home or '')
    else:
        if not out['MMCV_WHL']:  # a wheel cached under the old name is a CPU-only build: use it
            out['MMCV_WHL'] = cached_wheel(cache_dir(wheels, mmcv, torch_version, py_tag))
        out.update(FORCE_CUDA='0', CUDA_VISIBLE_DEVICES='')
    if out['MMCV_WHL']:  # nothing to build
        return out
    if not cxx:
        raise PlanError('no C++ compiler found (set CXX or install one: apt-get install g++); mmcv compiles '
                        'its ops with it.')
    if not use_cuda:
        return out
    want = f'nvcc of CUDA {torch_cuda} (torch {torch_version} was built for it)'
    install = (f'install the CUDA toolkit {torch_cuda} (e.g. apt-get install cuda-toolkit-'
               f'{torch_cuda.replace(".", "-")} from NVIDIA\'s repository) and set CUDA_HOME to it, or build '
               'CPU-only ops with SAIM_MM_MMCV=cpu')
    why = f'torch sees a GPU, so mmcv\'s CUDA ops are compiled, which needs {want}'
    if cuda_home is None:
        raise PlanError(f'{why}, but no CUDA toolkit was found (no CUDA_HOME, no nvcc on PATH): {install}.')
    nvcc = osp.join(cuda_home, 'bin', 'nvcc')
    version = nvcc_version(nvcc)
    if version is None:
        raise PlanError(f'{why}, but {nvcc} is missing or does not run: {install}.')
    if version.split('.')[0] != torch_cuda.split('.')[0]:
        raise PlanError(f'{why}, but {nvcc} is CUDA {version}, another major version (torch\'s extension '
                        f'build refuses it): {install}.')
    if not osp.isfile(osp.join(cuda_home, 'include', 'cuda_runtime.h')):
        raise PlanError(f'{why}, but the CUDA headers are missing ({cuda_home}/include/cuda_runtime.h): '
                        f'{install}.')
    if version != torch_cuda:
        print(f'mmcv build: nvcc is CUDA {version}, torch was built for {torch_cuda}; the same major version '
              'builds (torch warns).', file=sys.stderr)
    return out


def torch_facts() -> dict:
    import torch
    if getattr(torch.version, 'hip', None):
        raise PlanError('this torch is a ROCm build; tools/setup_env.sh builds mmcv for CPU or CUDA only.')
    return dict(torch_version=torch.__version__.split('+')[0], torch_cuda=torch.version.cuda,
                gpu=torch.cuda.is_available())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--wheels', required=True, help='wheel cache folder')
    parser.add_argument('--mmcv', required=True, help='mmcv version, e.g. 2.1.0')
    parser.add_argument('--py-tag', default=f'cp{sys.version_info[0]}{sys.version_info[1]}')
    parser.add_argument('--torch-version', help="default: torch's")
    parser.add_argument('--torch-cuda', help="CUDA version torch was built for, or 'none'; default: torch's")
    parser.add_argument('--gpu', choices=['yes', 'no'], help='whether torch sees a GPU; default: asks torch')
    parser.add_argument('--cuda-home', help='CUDA toolkit folder; default: $CUDA_HOME, $CUDA_PATH, nvcc on PATH')
    parser.add_argument('--cxx', help='C++ compiler; default: $CXX, c++, g++')
    args = parser.parse_args(argv)
    env = dict(os.environ)
    try:
        facts = {}
        if args.torch_version is None or args.torch_cuda is None or args.gpu is None:
            facts = torch_facts()
        torch_cuda = args.torch_cuda if args.torch_cuda is not None else facts['torch_cuda']
        result = plan(
            wheels=args.wheels, mmcv=args.mmcv, py_tag=args.py_tag,
            torch_version=args.torch_version or facts['torch_version'],
            torch_cuda=None if torch_cuda in (None, 'none', '') else torch_cuda,
            gpu=facts['gpu'] if args.gpu is None else args.gpu == 'yes',
            cuda_home=args.cuda_home or find_cuda_home(env),
            cxx=args.cxx or env.get('CXX') or shutil.which('c++') or shutil.which('g++'),
            force_cpu=env.get('SAIM_MM_MMCV', '').lower() == 'cpu')
    except PlanError as e:
        print(f'mmcv build: {e}', file=sys.stderr)
        return 1
    for key, value in result.items():
        print(f'{key}={shlex.quote(value)}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
