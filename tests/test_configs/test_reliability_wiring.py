"""Every pre-training config carries the reliability hooks, the checked image loader and per-rank seeds."""
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmpretrain.registry import HOOKS

import saim_mm  # noqa: F401
from saim_mm.engine.hooks import AtomicCheckpointHook, NonFiniteLossHook, ResumableRandomnessHook
from tests.test_configs.test_coverage import CONFIG_DIR, all_configs

PRETRAIN = [rel for rel in all_configs() if rel.startswith('saim/')]
CHECKED_CONFIGS = {rel: 'reliability hooks, checked image loading, per-rank seeds' for rel in PRETRAIN}
# the configs that auto-resume must also resume exactly (no persistent data-loader workers)
AUTO_RESUME = [rel for rel in PRETRAIN if Config.fromfile(osp.join(CONFIG_DIR, rel)).resume]


def test_the_paper_configs_are_covered():
    assert {'saim/vitb_800e.py', 'saim/vitb_300e.py', 'saim/demo_cpu.py'} <= set(PRETRAIN)
    assert 'saim/vitb_800e.py' in AUTO_RESUME and 'saim/ablations/dec6.py' in AUTO_RESUME


@pytest.mark.parametrize('rel', PRETRAIN)
def test_reliability_wiring(rel):
    cfg = Config.fromfile(osp.join(CONFIG_DIR, rel))
    init_default_scope('mmpretrain')
    checkpoint = HOOKS.build(cfg.default_hooks.checkpoint)
    assert type(checkpoint) is AtomicCheckpointHook and checkpoint.check_finite
    custom = [HOOKS.build(h) for h in cfg.custom_hooks]
    assert {type(h) for h in custom} >= {ResumableRandomnessHook, NonFiniteLossHook}
    loader = cfg.train_dataloader
    assert loader.dataset.pipeline[0].type == 'CheckedLoadImageFromFile'
    assert loader.worker_init_fn.type == 'torch_seed_worker_init_fn'
    assert cfg.randomness.diff_rank_seed is True  # ranks draw different orders and augmentations
    assert cfg.randomness.seed is not None
    if rel in AUTO_RESUME:
        assert loader.persistent_workers is False
