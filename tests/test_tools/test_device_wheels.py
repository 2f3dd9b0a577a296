"""The wheels of tools/misc/build_device_wheels.sh install with --no-index beside a torch and run a
pre-training step, as tools/analysis/gpu_check.sh does on a lent GPU machine.

The wheels are built for this machine's Python (the device's is 3.12; the build takes --python-version), the
third-party ones from the script's cache. Everything that the device image does not have (the script's
DEVICE_HAS list) is refused from the test environment's own packages while the check runs, so a package
missing from the wheels fails here as it would there."""
import json
import os
import os.path as osp
import re
import subprocess
import sys

import pytest

from tests.conftest import REPO

BUILD = osp.join(REPO, 'tools/misc/build_device_wheels.sh')
CHECK = osp.join(REPO, 'tools/analysis/gpu_check.sh')

# sitecustomize for the check's processes: a top-level module in BLOCKED is imported from SITE or not at all
BLOCKER = '''import importlib.machinery
import sys

SITE = {site!r}
BLOCKED = set({blocked!r})


class DeviceOnly:
    """Modules the device image lacks come from the installed wheels only."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        if path is not None or name not in BLOCKED:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, [SITE])
        if spec is None:
            raise ModuleNotFoundError(f'No module named {{name!r}} (not on the device, not in the wheels)', name=name)
        return spec


sys.meta_path.insert(0, DeviceOnly)
'''


def device_has() -> set:
    text = open(BUILD).read()
    return set(re.search(r'DEVICE_HAS="([^"]+)"', text).group(1).split())


def blocked_modules(device: set) -> list:
    """Top-level modules of this Python's distributions that the device image does not have."""
    code = ('import json, re\nfrom importlib import metadata\n'
            'print(json.dumps({m: [re.sub(r"[-_.]+", "-", d).lower() for d in ds] '
            'for m, ds in metadata.packages_distributions().items()}))')
    tops = json.loads(subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                                     check=True).stdout)
    allowed = device | {'opencv-python'}  # the device's opencv-python-headless gives the same cv2
    blocked = {m for m, dists in tops.items() if not any(d in allowed for d in dists)}
    return sorted(blocked | {'saim_mm', 'mmcv', 'mmengine', 'mmpretrain'})


@pytest.mark.device_wheels
def test_wheels_install_without_an_index_and_train_a_step(tmp_path):
    wheels, site, out = tmp_path / 'wheels', tmp_path / 'site', tmp_path / 'out'
    ver = f'{sys.version_info[0]}.{sys.version_info[1]}'
    build = subprocess.run(['bash', BUILD, str(wheels), '--python-version', ver], cwd=REPO, capture_output=True,
                           text=True, timeout=900)
    assert build.returncode == 0, build.stderr[-3000:]
    names = sorted(f for f in os.listdir(wheels) if f.endswith('.whl'))
    for pkg in ('saim_mm', 'mmcv', 'mmengine', 'mmpretrain'):
        assert sum(n.startswith(pkg + '-') for n in names) == 1, names
    assert not any(n.startswith(('mmdet-', 'mmsegmentation-', 'torch-', 'numpy-')) for n in names), names
    assert re.search(r'^total: .* MiB \(limit 64 MiB\)$', build.stdout, re.M), build.stdout
    assert os.listdir(wheels / 'fallback') and os.listdir(wheels / 'fallback')[0].startswith('setuptools-')

    blocker = tmp_path / 'blocker'
    blocker.mkdir()
    (blocker / 'sitecustomize.py').write_text(BLOCKER.format(site=str(site), blocked=blocked_modules(device_has())))
    env = dict(os.environ, PYTHON=sys.executable, PYTHONPATH=str(blocker))
    env.pop('PIP_FIND_LINKS', None)
    check = subprocess.run(['bash', CHECK, '--wheels', str(wheels), '--site', str(site), '--device', 'cpu',
                            '--tiny', '--parts', 'install', '--out-dir', str(out), '--budget-s', '300'],
                           cwd=REPO, capture_output=True, text=True, timeout=600, env=env)
    assert check.returncode == 0, check.stdout[-3000:] + check.stderr[-2000:]
    assert f'installed {len(names)} wheels into {site}' in check.stdout
    report = json.load(open(out / 'gpu_check.json'))
    install = report['results']['install']
    for pkg in ('saim_mm', 'mmpretrain', 'mmengine', 'mmcv'):
        assert install['modules'][pkg]['file'].startswith(str(site) + os.sep), install['modules'][pkg]
    assert install['site'] == str(site)
    assert install['mmcv_ops'].startswith('none')  # MMCV_WITH_OPS=0
    assert install['step']['batch'] == 2 and install['step']['loss'] == install['step']['loss']  # finite
    assert 'mmcv==2.1.0' in install['distributions']

    # the blocker works: a package outside the device's list and the wheels cannot be imported
    probe = subprocess.run([sys.executable, '-c', 'import mmdet'], capture_output=True, text=True,
                           env=dict(env, PYTHONPATH=f'{site}:{blocker}'))
    assert probe.returncode != 0 and 'not on the device' in probe.stderr
