"""Every config under configs/ loads and is checked by some recipe test in this folder."""
import glob
import importlib
import os.path as osp
import pkgutil

import pytest
from mmengine.config import Config

import saim_mm  # noqa: F401
from tests.conftest import REPO

CONFIG_DIR = osp.join(REPO, 'configs')


def all_configs():
    paths = glob.glob(osp.join(CONFIG_DIR, '**', '*.py'), recursive=True)
    return sorted(osp.relpath(p, CONFIG_DIR) for p in paths if '_base_' not in p.split(osp.sep))


def claimed_configs() -> dict:
    claimed = {}
    package = osp.dirname(__file__)
    for info in pkgutil.iter_modules([package]):
        if info.name.startswith('test_') and info.name != 'test_coverage':
            module = importlib.import_module(f'tests.test_configs.{info.name}')
            claimed.update(getattr(module, 'CHECKED_CONFIGS', {}))
    return claimed


def test_every_config_is_claimed_by_a_recipe_test():
    claimed = claimed_configs()
    unclaimed = [c for c in all_configs() if c not in claimed]
    assert not unclaimed, f'configs that no recipe test checks: {unclaimed}'
    missing = [c for c in claimed if c not in all_configs()]
    assert not missing, f'recipe tests name configs that do not exist: {missing}'


@pytest.mark.parametrize('rel', all_configs())
def test_config_loads_and_imports_saim_mm(rel):
    cfg = Config.fromfile(osp.join(CONFIG_DIR, rel))
    assert 'saim_mm' in cfg.custom_imports.imports
