"""configs/saim/variants/: beyond the paper, one config key (or a few) each.

Each keeps the pre-training recipe of its parent and differs from it only in its own keys; its model
builds (at a tiny encoder width, to stay fast) and has the variant's structure.
"""
import pytest
import torch
from mmpretrain.registry import MODELS

import saim_mm  # noqa: F401
from tests.test_configs.test_ablation_recipes import flatten, load
from tests.test_configs.test_pretrain_recipes import check_pretrain_recipe

NARROW = {'model.neck.embed_dims': 512, 'model.neck.num_layers': 8, 'model.neck.num_heads': 16,
          'model.neck.feedforward_channels': 2048, 'model.neck.context_layers': [2, 3, 5, 6, 8, 9, 11, 12]}
# config -> (parent, the keys it changes)
VARIANTS = {
    'partial_1_2.py': ('saim/vitb_800e.py', {'model.neck.predict_ratio': 1 / 2}),
    'partial_1_6.py': ('saim/vitb_800e.py', {'model.neck.predict_ratio': 1 / 6}),
    'narrow_512x8.py': ('saim/vitb_800e.py', NARROW),
    'narrow_512x8_partial_1_6.py': ('saim/variants/narrow_512x8.py', {'model.neck.predict_ratio': 1 / 6}),
    'narrow_512x4_partial_1_6.py': ('saim/variants/narrow_512x8_partial_1_6.py', {
        'model.neck.num_layers': 4, 'model.neck.context_layers': [3, 6, 9, 12]}),
    'order_raster.py': ('saim/vitb_800e.py', {'model.order': 'raster'}),
    'order_spiral.py': ('saim/vitb_800e.py', {'model.order': 'spiral'}),
    'order_centre_out.py': ('saim/vitb_800e.py', {'model.order': 'centre_out'}),
    'order_checkerboard.py': ('saim/vitb_800e.py', {'model.order': 'checkerboard'}),
    'order_fixed_random.py': ('saim/vitb_800e.py', {'model.order': 'fixed_random'}),
    'order_random_segments.py': ('saim/vitb_800e.py', {'model.order': '<missing>', 'model.order.type':
                                                       'RandomSegmentOrder', 'model.order.segment': (2, 2)}),
    'hog_target.py': ('saim/vitb_800e.py', {
        'model.head.type': 'HOGLoss', 'model.head.nbins': 9, 'model.head.pool': 8, 'model.head.gaussian_window': 16,
        'model.head.kernel_size': '<missing>', 'model.head.sigma': '<missing>', 'model.head.norm_pix': '<missing>',
        'model.head.loss.type': '<missing>', 'model.head.loss.criterion': '<missing>'}),
}
# the same variants on the CPU demo (for tools/analysis/small_study.py --configs)
DEMO = 'saim/demo_cpu.py'
DEMO_VARIANTS = {
    'demo/partial_1_6.py': (DEMO, {'model.neck.predict_ratio': 1 / 6}),
    'demo/narrow.py': (DEMO, {'model.neck.embed_dims': 64, 'model.neck.num_layers': 3, 'model.neck.num_heads': 2,
                              'model.neck.feedforward_channels': 256, 'model.neck.context_layers': [2, 3, 4]}),
    'demo/random_segments.py': (DEMO, VARIANTS['order_random_segments.py'][1]),
    'demo/hog_target.py': (DEMO, {**VARIANTS['hog_target.py'][1], 'model.head.pool': 2}),
}
CHECKED_CONFIGS = {f'saim/variants/{name}': 'variant: recipe, diff against its parent, structure'
                   for name in {**VARIANTS, **DEMO_VARIANTS}}


@pytest.mark.parametrize('name', sorted({**VARIANTS, **DEMO_VARIANTS}))
def test_variant_differs_from_its_parent_only_in_its_keys(name):
    parent, expected = {**VARIANTS, **DEMO_VARIANTS}[name]
    base = flatten(load(parent).to_dict())
    cfg = flatten(load(f'saim/variants/{name}').to_dict())
    missing = '<missing>'
    changed = {k: cfg.get(k, missing)
               for k in set(base) | set(cfg) if base.get(k, missing) != cfg.get(k, missing)}
    changed = {k: (list(v) if isinstance(v, tuple) else v) for k, v in changed.items()}
    expected = {k: (list(v) if isinstance(v, tuple) else v) for k, v in expected.items()}
    assert changed == expected
    if parent != DEMO:
        check_pretrain_recipe(load(f'saim/variants/{name}'), epochs=800)


@pytest.mark.parametrize('name', sorted(DEMO_VARIANTS))
def test_demo_variant_trains_a_step(name):
    model = MODELS.build(load(f'saim/variants/{name}').model)
    loss = model.loss(torch.randn(2, 3, 32, 32))['loss']
    loss.backward()
    assert torch.isfinite(loss)


@pytest.mark.parametrize('name', sorted(VARIANTS))
def test_variant_model_builds_with_its_structure(name):
    model_cfg = load(f'saim/variants/{name}').model
    model_cfg.backbone.arch = dict(embed_dims=64, num_layers=12, num_heads=2, feedforward_channels=128)
    model_cfg.backbone.img_size = 64  # 4 x 4 patches of 16
    model = MODELS.build(model_cfg)
    neck = model.neck
    if 'partial' in name:
        assert model.num_predictions == round(16 * model_cfg.neck.predict_ratio)
    if 'narrow_512x8' in name:
        assert neck.embed_dims == 512 and neck.narrow and neck.context_indices(12) == [1, 2, 4, 5, 7, 8, 10, 11]
    elif 'narrow_512x4' in name:
        assert neck.embed_dims == 512 and neck.narrow and neck.context_indices(12) == [2, 5, 8, 11]
    else:
        assert neck.embed_dims == 64
    if name == 'hog_target.py':
        assert neck.out_channels == model.head.target_channels == 108
    if name.startswith('order_'):
        assert type(model.order_generator).__name__ in (
            'RasterOrder', 'SpiralOrder', 'CentreOutOrder', 'CheckerboardOrder', 'FixedRandomOrder',
            'RandomSegmentOrder')
    x = torch.randn(2, 3, 64, 64)
    assert torch.isfinite(model.loss(x)['loss'])
