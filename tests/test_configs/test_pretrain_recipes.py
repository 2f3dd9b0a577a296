"""The pre-training configs (configs/saim/) load, build and carry the recipe of docs/recipes.md."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmpretrain.registry import MODELS

import saim_mm  # noqa: F401
from tests.conftest import REPO

CONFIG_DIR = osp.join(REPO, 'configs')
GPUS = 8  # the recipes' total batch is given for 8 GPUs (tools/dist_train.sh CONFIG 8)


def load(rel: str) -> Config:
    return Config.fromfile(osp.join(CONFIG_DIR, rel))


def check_pretrain_recipe(cfg: Config, epochs: int) -> None:
    opt = cfg.optim_wrapper
    loader = cfg.train_dataloader
    total_batch = loader.batch_size * GPUS * opt.get('accumulative_counts', 1)
    assert total_batch == 2048
    assert cfg.auto_scale_lr.base_batch_size == 2048
    assert opt.type == 'AmpOptimWrapper'  # mixed precision
    assert opt.optimizer.type == 'AdamW'
    assert opt.optimizer.lr == pytest.approx(2e-4 * 2048 / 256)
    assert tuple(opt.optimizer.betas) == (0.9, 0.95)
    assert opt.optimizer.weight_decay == 0.05
    assert cfg.train_cfg.max_epochs == epochs
    warmup, cosine = cfg.param_scheduler
    assert (warmup.type, warmup.begin, warmup.end, warmup.by_epoch) == ('LinearLR', 0, 30, True)
    assert (cosine.type, cosine.begin, cosine.end, cosine.T_max) == ('CosineAnnealingLR', 30, epochs, epochs - 30)
    assert cosine.eta_min == 0
    crop = next(t for t in loader.dataset.pipeline if t.type == 'RandomResizedCrop')
    assert crop.scale == 224
    assert tuple(crop.crop_ratio_range) == (0.67, 1.0)
    assert tuple(crop.aspect_ratio_range) == pytest.approx((3 / 4, 4 / 3))
    assert crop.interpolation == 'bicubic'
    flip = next(t for t in loader.dataset.pipeline if t.type == 'RandomFlip')
    assert flip.prob == 0.5
    assert loader.dataset.type == 'ImageNet' and loader.dataset.split == 'train'
    model = cfg.model
    assert model.backbone.arch == 'b' and model.backbone.patch_size == 16 and model.backbone.img_size == 224
    assert model.backbone.get('drop_path_rate', 0) == 0  # no drop path
    assert cfg.resume is True  # auto-resume
    assert any(b.type == 'TensorboardVisBackend' for b in cfg.visualizer.vis_backends)


def check_weight_decay_exemptions(cfg: Config) -> None:
    """Build the optimiser on the real model: no decay on norms, biases, cls token, position embedding."""
    model = MODELS.build(cfg.model)
    opt_cfg = cfg.optim_wrapper.copy()
    opt_cfg.type = 'OptimWrapper'  # AmpOptimWrapper needs a GPU; the param groups are the same
    wrapper = build_optim_wrapper(model, opt_cfg)
    decay = {}
    for group in wrapper.optimizer.param_groups:
        for p in group['params']:
            decay[id(p)] = group['weight_decay']
    checked = 0
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        exempt = (p.dim() == 1 or name.endswith('cls_token') or name.endswith('pos_embed'))
        assert decay[id(p)] == (0.0 if exempt else 0.05), name
        checked += 1
    assert checked > 100


EXPECTED = {
    'saim/vitb_800e.py': dict(epochs=800),
    'saim/vitb_300e.py': dict(epochs=300),
}
# Every config under configs/ must be claimed by the CHECKED_CONFIGS of one test module here
# (see test_coverage.py): config path relative to configs/ -> what checks it.
CHECKED_CONFIGS = {
    **{rel: 'pre-training recipe' for rel in EXPECTED},
    'saim/demo_cpu.py': 'tiny CPU demo: builds; inherits the optimiser and decay rules of vitb_800e.py',
}


def test_demo_model_builds():
    MODELS.build(load('saim/demo_cpu.py').model)


@pytest.mark.parametrize('rel', sorted(EXPECTED))
def test_pretrain_recipe(rel):
    check_pretrain_recipe(load(rel), **EXPECTED[rel])


def test_pretrain_weight_decay_exemptions():
    check_weight_decay_exemptions(load('saim/vitb_800e.py'))


def test_demo_inherits_the_paper_decoder_and_target():
    demo, paper = load('saim/demo_cpu.py'), load('saim/vitb_800e.py')
    for key in ('share_encoder_weights', 'predictor'):
        assert demo.model.neck[key] == paper.model.neck[key]
    assert demo.model.head.norm_pix == paper.model.head.norm_pix
    assert demo.model.order == paper.model.order == 'stochastic'
    assert demo.optim_wrapper.paramwise_cfg == paper.optim_wrapper.paramwise_cfg
    assert torch.tensor(demo.model.neck.num_layers) == demo.model.backbone.arch.num_layers
