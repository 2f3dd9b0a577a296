"""The paper vs the authors' release (docs/recipes.md, "Paper vs the authors' release"): every switch of the table
gives the release's value, the paper stays the default, and the *_release.py configs are exactly those."""
import argparse
import copy
import os.path as osp
import re
import shlex

import pytest
import torch
from mmengine.config import Config, DictAction
from mmengine.optim import build_optim_wrapper
from mmpretrain.registry import MODELS

import saim_mm  # noqa: F401
from tests.conftest import REPO

CONFIG_DIR = osp.join(REPO, 'configs')
PRETRAIN, FINETUNE = 'saim/vitb_800e.py', 'benchmarks/imagenet/vitb_finetune_100e.py'
LINEAR, LINEAR_RELEASE = 'benchmarks/imagenet/vitb_linear_90e.py', 'benchmarks/imagenet/vitb_linear_90e_release.py'
PRETRAIN_RELEASE = 'saim/vitb_800e_release.py'
CHECKED_CONFIGS = {
    PRETRAIN_RELEASE: "the paper's pre-training config with the release's switches, and nothing else",
    LINEAR_RELEASE: "the linear probe with the release's optimiser, batch and schedule, and nothing else",
}
TINY = dict(arch=dict(_delete_=True, embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64),
            img_size=32)


def load(rel: str, options: str = '') -> Config:
    cfg = Config.fromfile(osp.join(CONFIG_DIR, rel))
    if options:
        parser = argparse.ArgumentParser()
        parser.add_argument('--cfg-options', nargs='+', action=DictAction)
        cfg.merge_from_dict(parser.parse_args(shlex.split(options)).cfg_options)
    return cfg


def crop(cfg):
    return tuple(next(t for t in cfg.train_dataloader.dataset.pipeline if t.type == 'RandomResizedCrop')
                 .crop_ratio_range)


def cls_token_decay(cfg) -> float:
    """Weight decay the optimiser gives the cls token of the (tiny) built model."""
    tiny = copy.deepcopy(cfg)
    tiny.merge_from_dict(dict(model=dict(backbone=copy.deepcopy(TINY), neck=dict(num_layers=2))))
    model = MODELS.build(tiny.model)
    wrapper = build_optim_wrapper(model, dict(cfg.optim_wrapper, type='OptimWrapper'))
    return next(g['weight_decay'] for g in wrapper.optimizer.param_groups
                if any(p is model.backbone.cls_token for p in g['params']))


def total_batch(cfg, gpus):
    return cfg.train_dataloader.batch_size * gpus * cfg.optim_wrapper.get('accumulative_counts', 1)


# docs/recipes.md row -> (config, --cfg-options as in the table, GPUs, value(cfg, gpus), paper value, release value)
SWITCHES = {
    'pre-training crop scale': (
        PRETRAIN, '--cfg-options "train_dataloader.dataset.pipeline.1.crop_ratio_range=(0.2,1.0)"', 8,
        lambda c, g: crop(c), (0.67, 1.0), (0.2, 1.0)),
    'pre-training weight decay': (PRETRAIN, '--cfg-options optim_wrapper.optimizer.weight_decay=0.5', 8,
                                  lambda c, g: c.optim_wrapper.optimizer.weight_decay, 0.05, 0.5),
    'weight decay of the cls token': (
        PRETRAIN, '--cfg-options optim_wrapper.paramwise_cfg.custom_keys.cls_token.decay_mult=1.0', 8,
        lambda c, g: cls_token_decay(c), 0.0, 0.05),
    'last incomplete batch': (PRETRAIN, '--cfg-options train_dataloader.drop_last=True', 8,
                              lambda c, g: c.train_dataloader.get('drop_last', False), False, True),
    'warm-up start': (PRETRAIN, '--cfg-options param_scheduler.0.start_factor=0', 8,
                      lambda c, g: c.param_scheduler[0].start_factor, 1e-4, 0.0),
    'pre-training GPUs x batch': (PRETRAIN, '--cfg-options train_dataloader.batch_size=64', 32,
                                  lambda c, g: (g, c.train_dataloader.batch_size, total_batch(c, g),
                                                c.optim_wrapper.optimizer.lr),
                                  (8, 256, 2048, 2e-4 * 2048 / 256), (32, 64, 2048, 2e-4 * 2048 / 256)),
    'fine-tuning GPUs x batch': (FINETUNE, '--cfg-options train_dataloader.batch_size=32', 32,
                                 lambda c, g: (g, c.train_dataloader.batch_size, total_batch(c, g)),
                                 (8, 128, 1024), (32, 32, 1024)),
}
PRETRAIN_RELEASE_ROWS = ('pre-training crop scale', 'pre-training weight decay', 'weight decay of the cls token',
                         'last incomplete batch')


@pytest.mark.parametrize('row', sorted(SWITCHES))
def test_switch_gives_the_release_value_and_the_paper_is_the_default(row):
    rel, options, gpus, value, paper, release = SWITCHES[row]
    default_gpus = 8
    assert value(load(rel), default_gpus) == pytest.approx(paper)
    assert value(load(rel, options), gpus) == pytest.approx(release)


def test_pretrain_release_config_is_the_paper_config_with_the_switches():
    options = ' '.join(SWITCHES[row][1].split('--cfg-options ', 1)[1] for row in PRETRAIN_RELEASE_ROWS)
    switched = load(PRETRAIN, '--cfg-options ' + options)
    release = load(PRETRAIN_RELEASE)
    helper = 'train_pipeline'  # the variable the loader's pipeline is written from; the loader is compared
    assert {k: v for k, v in release.to_dict().items() if k != helper} == \
        {k: v for k, v in switched.to_dict().items() if k != helper}
    assert crop(release) == (0.2, 1.0) and release.train_dataloader.drop_last is True
    assert cls_token_decay(release) == release.optim_wrapper.optimizer.weight_decay == 0.5


def test_linear_release_config():
    paper, release = load(LINEAR), load(LINEAR_RELEASE)
    opt = release.optim_wrapper
    assert opt.type == 'AmpOptimWrapper'
    assert dict(opt.optimizer) == dict(type='SGD', lr=pytest.approx(0.1 * 2048 / 256), momentum=0.9, weight_decay=0.0)
    assert release.train_dataloader.batch_size * 8 == 2048 == release.auto_scale_lr.base_batch_size
    (cosine, ) = release.param_scheduler  # no warm-up
    assert (cosine.type, cosine.begin, cosine.end, cosine.T_max) == ('CosineAnnealingLR', 0, 90, 90)
    assert cosine.eta_min == 0.0
    assert paper.optim_wrapper.optimizer.type == 'LARS' and paper.train_dataloader.batch_size * 8 == 16384
    assert paper.param_scheduler[0].type == 'LinearLR' and paper.param_scheduler[0].end == 10
    # nothing else differs
    changed = ('optim_wrapper', 'param_scheduler', 'train_dataloader', 'auto_scale_lr', 'batch_size')
    a, b = paper.to_dict(), release.to_dict()
    assert {k for k in set(a) | set(b) if a.get(k) != b.get(k)} <= set(changed)
    assert {k: v for k, v in a['train_dataloader'].items() if k != 'batch_size'} == \
        {k: v for k, v in b['train_dataloader'].items() if k != 'batch_size'}
    sgd = MODELS.build(dict(release.model, backbone=dict(release.model.backbone, **TINY, frozen_stages=2), neck=None,
                            head=dict(release.model.head, in_channels=32)))
    wrapper = build_optim_wrapper(sgd, dict(opt, type='OptimWrapper'))
    assert isinstance(wrapper.optimizer, torch.optim.SGD)


def readme_switches() -> set:
    text = open(osp.join(REPO, 'docs', 'recipes.md')).read()
    section = text.split("## Paper vs the authors' release", 1)[1].split('\n## ', 1)[0]
    rows = [line for line in section.splitlines() if line.startswith('| ') and '---' not in line][1:]
    found = set()
    for row in rows:
        for code in re.findall(r'`([^`]*)`', row.split(' | ')[-1]):
            if '--cfg-options' in code:
                found.add('--cfg-options ' + code.split('--cfg-options ', 1)[1])
    return found


def test_every_cfg_options_switch_of_the_recipes_table_is_tested():
    assert readme_switches() == {options for _, options, *_ in SWITCHES.values()}
