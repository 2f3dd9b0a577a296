"""Layer-wise lr decay of the SAIM ViT inside optimisers built in mmdet and mmseg (demo configs, tiny ViT)."""
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope

import saim_mm  # noqa: F401
from tests.conftest import REPO

DECAY_KEYS = {'backbone.pos_embed': dict(decay_mult=0.0), 'rel_pos_bias': dict(decay_mult=0.0)}


def build(rel: str, scope: str, optim_wrapper: dict = None):
    cfg = Config.fromfile(osp.join(REPO, 'configs', rel))
    cfg.model.backbone.init_cfg = None
    if scope == 'mmdet':
        from mmdet.registry import MODELS
    else:
        from mmseg.registry import MODELS
    with DefaultScope.overwrite_default_scope(scope):
        model = MODELS.build(cfg.model)
        wrapper = build_optim_wrapper(model, optim_wrapper or cfg.optim_wrapper)
    return model, wrapper


def lr_of(model, wrapper) -> dict:
    by_id = {}
    for group in wrapper.optimizer.param_groups:
        for p in group['params']:
            by_id[id(p)] = (group['lr'], group['weight_decay'])
    return {name: by_id[id(p)] for name, p in model.named_parameters() if p.requires_grad}


def check_layer_decay(model, wrapper, base_lr: float, rate: float, wd: float) -> None:
    depth = model.backbone.num_layers
    lrs = lr_of(model, wrapper)
    seen_blocks = set()
    for name, (lr, decay) in lrs.items():
        if name.startswith('backbone.layers.'):
            i = int(name.split('.')[2])
            seen_blocks.add(i)
            expected = base_lr * rate ** (depth - i)  # block i has depth i + 1 of depth + 2
        elif name.startswith(('backbone.patch_embed', 'backbone.pos_embed', 'backbone.cls_token')):
            expected = base_lr * rate ** (depth + 1)
        else:  # neck and heads
            expected = base_lr
        assert lr == pytest.approx(expected), name
        if name.endswith('pos_embed') or 'rel_pos_bias' in name or name.endswith('.bias') or 'norm' in name \
                or '.ln' in name or '.bn' in name:
            assert decay == 0.0, name
    assert seen_blocks == set(range(depth))
    assert lrs['backbone.layers.0.attn.qkv.weight'][1] == wd
    assert lrs['backbone.layers.0.attn.rel_pos_bias.table'][0] == pytest.approx(base_lr * rate ** depth)


def test_layer_decay_in_mmseg_optimiser_of_the_ade20k_recipe():
    model, wrapper = build('benchmarks/ade20k/upernet_saim-vit-demo_cpu.py', 'mmseg')
    check_layer_decay(model, wrapper, base_lr=1e-3, rate=0.65, wd=0.05)
    # the last block gets lr * 0.65, the first lr * 0.65 ** 4, the decode head the full lr
    lrs = lr_of(model, wrapper)
    assert lrs['backbone.layers.3.ffn.layers.1.weight'][0] == pytest.approx(1e-3 * 0.65)
    assert lrs['decode_head.conv_seg.weight'][0] == pytest.approx(1e-3)


def test_layer_decay_in_mmdet_optimiser():
    optim = dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.1),
                 constructor='mmpretrain.BackboneLayerDecayOptimWrapperConstructor',
                 paramwise_cfg=dict(layer_decay_rate=0.7, flat_decay_mult=0.0, custom_keys=DECAY_KEYS))
    model, wrapper = build('benchmarks/coco/mask-rcnn_saim-vit-demo_cpu.py', 'mmdet', optim)
    check_layer_decay(model, wrapper, base_lr=1e-4, rate=0.7, wd=0.1)
    assert lr_of(model, wrapper)['roi_head.mask_head.conv_logits.weight'][0] == pytest.approx(1e-4)


def test_a_model_without_a_layered_backbone_is_refused():
    import torch.nn as nn
    from saim_mm.dense import BackboneLayerDecayOptimWrapperConstructor
    ctor = BackboneLayerDecayOptimWrapperConstructor(
        dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-4)), dict(layer_decay_rate=0.5))
    model = nn.Module()
    model.backbone = nn.Linear(2, 2)
    with pytest.raises(TypeError, match='needs a model with a backbone that has get_layer_depth'):
        ctor(model)
