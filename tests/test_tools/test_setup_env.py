"""tools/setup_env.sh's mmcv decision (tools/misc/mmcv_build_plan.py) on simulated machines: CPU-only or
CUDA build, the wheel-cache key, and an early stop naming what to install when the CUDA build cannot work."""
import importlib.util
import os
import os.path as osp
import re
import shlex
import subprocess
import sys

import pytest

from tests.conftest import REPO


def load_tool(path: str):
    """A tool script as a module, without putting its folder on ``sys.path``."""
    spec = importlib.util.spec_from_file_location(osp.splitext(osp.basename(path))[0], osp.join(REPO, path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


mbp = load_tool('tools/misc/mmcv_build_plan.py')

COMMON = dict(mmcv='2.1.0', torch_version='2.14.1', py_tag='cp311', cxx='/usr/bin/g++')


def toolkit(root, version: str, headers: bool = True) -> str:
    """A fake CUDA toolkit whose ``bin/nvcc --version`` reports ``version``."""
    home = root / f'cuda-{version}'
    (home / 'bin').mkdir(parents=True)
    nvcc = home / 'bin' / 'nvcc'
    nvcc.write_text(f'#!/bin/sh\necho "Cuda compilation tools, release {version}, V{version}.1"\n')
    nvcc.chmod(0o755)
    if headers:
        (home / 'include').mkdir()
        (home / 'include' / 'cuda_runtime.h').write_text('')
    return str(home)


def cached(wheels, name: str) -> str:
    folder = wheels / name
    folder.mkdir(parents=True)
    whl = folder / 'mmcv-2.1.0-cp311-cp311-linux_x86_64.whl'
    whl.write_text('')
    return str(whl)


def test_no_gpu_builds_cpu_ops_under_the_cpu_key(tmp_path):
    for torch_cuda in (None, '12.8'):  # a CPU-only torch, or a CUDA torch on a machine without a GPU
        plan = mbp.plan(wheels=str(tmp_path), torch_cuda=torch_cuda, gpu=False, cuda_home=None, **COMMON)
        assert plan['MMCV_KEY'] == 'cpu' and plan['FORCE_CUDA'] == '0' and plan['CUDA_VISIBLE_DEVICES'] == ''
        assert plan['MMCV_DIR'] == str(tmp_path / 'mmcv-2.1.0-torch2.14.1-cp311-cpu')
        assert plan['MMCV_WHL'] == ''


def test_gpu_builds_cuda_ops_under_the_cuda_key(tmp_path):
    home = toolkit(tmp_path, '12.8')
    plan = mbp.plan(wheels=str(tmp_path / 'w'), torch_cuda='12.8', gpu=True, cuda_home=home, **COMMON)
    assert plan['MMCV_KEY'] == 'cu128' and plan['FORCE_CUDA'] == '1' and plan['CUDA_HOME'] == home
    assert plan['MMCV_DIR'].endswith('mmcv-2.1.0-torch2.14.1-cp311-cu128') and plan['MMCV_WHL'] == ''
    # another minor version of the same major builds (torch warns)
    assert mbp.plan(wheels=str(tmp_path / 'w'), torch_cuda='12.6', gpu=True, cuda_home=home,
                    **COMMON)['MMCV_KEY'] == 'cu126'
    # SAIM_MM_MMCV=cpu: CPU-only ops on a GPU machine, with the GPU hidden from mmcv's build
    forced = mbp.plan(wheels=str(tmp_path / 'w'), torch_cuda='12.8', gpu=True, cuda_home=None, force_cpu=True,
                      **COMMON)
    assert forced['MMCV_KEY'] == 'cpu' and forced['CUDA_VISIBLE_DEVICES'] == ''


@pytest.mark.parametrize('case,match', [
    ('no toolkit', r'no CUDA toolkit was found'),
    ('no nvcc', r'bin/nvcc is missing or does not run'),
    ('other major', r'is CUDA 11\.8, another major version'),
    ('no headers', r'CUDA headers are missing'),
])
def test_gpu_without_a_fitting_nvcc_stops_with_what_to_install(tmp_path, case, match):
    home = {'no toolkit': None, 'no nvcc': str(tmp_path / 'empty'), 'other major': toolkit(tmp_path, '11.8'),
            'no headers': toolkit(tmp_path, '12.8', headers=False)}[case]
    with pytest.raises(mbp.PlanError, match=match) as e:
        mbp.plan(wheels=str(tmp_path / 'w'), torch_cuda='12.8', gpu=True, cuda_home=home, **COMMON)
    assert 'install the CUDA toolkit 12.8' in str(e.value) and 'SAIM_MM_MMCV=cpu' in str(e.value)


def test_a_cached_wheel_is_used_only_for_its_own_key(tmp_path):
    cpu = cached(tmp_path, 'mmcv-2.1.0-torch2.14.1-cp311-cpu')
    assert mbp.plan(wheels=str(tmp_path), torch_cuda='12.8', gpu=False, cuda_home=None, **COMMON)['MMCV_WHL'] == cpu
    # a GPU machine never takes the CPU-only wheel: it builds (and here stops: no nvcc)
    with pytest.raises(mbp.PlanError):
        mbp.plan(wheels=str(tmp_path), torch_cuda='12.8', gpu=True, cuda_home=None, **COMMON)
    cuda = cached(tmp_path, 'mmcv-2.1.0-torch2.14.1-cp311-cu128')
    # with its own wheel cached, nothing is built, so neither nvcc nor a compiler is needed
    plan = mbp.plan(wheels=str(tmp_path), torch_cuda='12.8', gpu=True, cuda_home=None,
                    **dict(COMMON, cxx=None))
    assert plan['MMCV_WHL'] == cuda


def test_the_cpu_wheel_cached_under_the_old_name_is_taken_by_cpu_plans_only(tmp_path):
    old = cached(tmp_path, 'mmcv-2.1.0-torch2.14.1-cp311')  # what set-ups before the key wrote (CPU-only)
    cpu = mbp.plan(wheels=str(tmp_path), torch_cuda='12.8', gpu=False, cuda_home=None, **COMMON)
    assert cpu['MMCV_WHL'] == old
    home = toolkit(tmp_path / 'tk', '12.8')
    gpu = mbp.plan(wheels=str(tmp_path), torch_cuda='12.8', gpu=True, cuda_home=home, **COMMON)
    assert gpu['MMCV_WHL'] == ''  # built anew, with CUDA ops
    other_torch = mbp.plan(wheels=str(tmp_path), torch_cuda=None, gpu=False, cuda_home=None,
                           **dict(COMMON, torch_version='2.15.0'))
    assert other_torch['MMCV_WHL'] == ''


def test_no_compiler_stops_before_a_build(tmp_path):
    with pytest.raises(mbp.PlanError, match='no C\\+\\+ compiler'):
        mbp.plan(wheels=str(tmp_path), torch_cuda=None, gpu=False, cuda_home=None, **dict(COMMON, cxx=None))


def run_plan(*args, env=None):
    return subprocess.run([sys.executable, osp.join(REPO, 'tools/misc/mmcv_build_plan.py'), *args],
                          capture_output=True, text=True, timeout=120, env=env or dict(os.environ))


def test_command_line_prints_shell_assignments_or_stops(tmp_path):
    home = toolkit(tmp_path, '12.8')
    base = ['--wheels', str(tmp_path / 'w'), '--mmcv', '2.1.0', '--torch-version', '2.14.1', '--cxx', '/usr/bin/g++']
    ok = run_plan(*base, '--torch-cuda', '12.8', '--gpu', 'yes', '--cuda-home', home)
    assert ok.returncode == 0, ok.stderr
    values = dict(re.match(r'(\w+)=(.*)', line).groups() for line in ok.stdout.splitlines())
    assert {k: shlex.split(v)[0] if v else '' for k, v in values.items()}['MMCV_KEY'] == 'cu128'
    # what setup_env.sh runs: the variables reach the shell
    shell = subprocess.run(['bash', '-c', f'eval {shlex.quote(ok.stdout)}; echo "$MMCV_KEY $FORCE_CUDA $CUDA_HOME"'],
                           capture_output=True, text=True)
    assert shell.stdout.split() == ['cu128', '1', home]
    env = dict(os.environ, PATH='/usr/bin:/bin')
    env.pop('CUDA_HOME', None)
    env.pop('CUDA_PATH', None)
    missing = run_plan(*base, '--torch-cuda', '12.8', '--gpu', 'yes', '--cuda-home', str(tmp_path / 'none'), env=env)
    assert missing.returncode == 1 and missing.stdout == ''
    assert 'mmcv build: torch sees a GPU' in missing.stderr and 'nvcc' in missing.stderr


def test_setup_env_runs_the_plan_before_the_build_and_builds_what_it_says():
    script = open(osp.join(REPO, 'tools/setup_env.sh')).read()
    plan_at = script.index('tools/misc/mmcv_build_plan.py --wheels "$WHEELS" --mmcv "$MMCV_VER"')
    assert plan_at < script.index('pip download') < script.index('pip wheel')
    assert 'FORCE_CUDA="$FORCE_CUDA"' in script and 'CUDA_VISIBLE_DEVICES=' in script
    assert 'cp "$BUILD"/dist/mmcv-*.whl "$MMCV_DIR/"' in script
    assert 'FORCE_CUDA=0' not in script  # the decision is the plan's
