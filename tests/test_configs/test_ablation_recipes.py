"""configs/saim/ablations/: one config per row of the paper's Table 3 (SAIM's own experiments).

Each must pass the pre-training recipe check of vitb_300e.py and differ from it only in what its row
changes.
"""
import os.path as osp

import pytest
from mmengine.config import Config
from mmpretrain.registry import MODELS

import saim_mm  # noqa: F401
from tests.conftest import REPO
from tests.test_configs.test_pretrain_recipes import check_pretrain_recipe

NO_GAUSS = {'model.head.kernel_size': None}
# config -> (the keys its row changes relative to vitb_300e.py, paper fine-tune top-1)
ROWS = {
    'raster_dec0.py': ({'model.order': 'raster', 'model.neck.num_layers': 0, **NO_GAUSS}, 82.70),
    'raster_dec12.py': ({'model.order': 'raster', **NO_GAUSS}, 82.76),
    'stochastic_dec12.py': (NO_GAUSS, 83.40),
    'shared_weights.py': ({'model.neck.share_encoder_weights': True, **NO_GAUSS}, 83.02),
    'dec6.py': ({'model.neck.num_layers': 6, **NO_GAUSS}, 83.01),
    'dec1.py': ({'model.neck.num_layers': 1, **NO_GAUSS}, 82.76),
    'gauss_k3_s1.py': ({'model.head.kernel_size': 3}, 83.52),
    'gauss_k9_s1.py': ({}, 83.64),
    'gauss_k9_s1.5.py': ({'model.head.sigma': 1.5}, 83.45),
}
CHECKED_CONFIGS = {f'saim/ablations/{name}': 'Table 3 row: recipe and diff against vitb_300e.py'
                   for name in ROWS}


def flatten(d, prefix=''):
    out = {}
    for k, v in d.items():
        key = f'{prefix}{k}'
        if isinstance(v, dict):
            out.update(flatten(v, key + '.'))
        else:
            out[key] = v
    return out


def load(rel):
    return Config.fromfile(osp.join(REPO, 'configs', rel))


@pytest.mark.parametrize('name', sorted(ROWS))
def test_ablation_differs_from_300e_only_in_its_row(name):
    base = flatten(load('saim/vitb_300e.py').to_dict())
    cfg = flatten(load(f'saim/ablations/{name}').to_dict())
    missing = '<missing>'
    changed = {k: cfg.get(k, missing)
               for k in set(base) | set(cfg) if base.get(k, missing) != cfg.get(k, missing)}
    expected, _ = ROWS[name]
    expected = {k: v for k, v in expected.items() if base.get(k) != v}  # k9 s1 row: no change at all
    assert changed == expected


@pytest.mark.parametrize('name', sorted(ROWS))
def test_ablation_keeps_the_300e_recipe_and_states_the_paper_number(name):
    cfg = load(f'saim/ablations/{name}')
    check_pretrain_recipe(cfg, epochs=300)
    text = open(osp.join(REPO, 'configs/saim/ablations', name)).read()
    assert f'{ROWS[name][1]:.2f}' in text


@pytest.mark.parametrize('name', sorted(ROWS))
def test_ablation_model_builds_at_tiny_width(name):
    """The row's structure (order, depth, sharing, smoothing) builds; the width is shrunk for speed (in the
    encoder only: the decoder takes its sizes from the encoder)."""
    model_cfg = load(f'saim/ablations/{name}').model
    model_cfg.backbone.arch = dict(embed_dims=32, num_layers=12, num_heads=2, feedforward_channels=64)
    model_cfg.backbone.img_size = 32
    model = MODELS.build(model_cfg)
    assert model.neck.num_layers == model_cfg.neck.num_layers
    assert model.neck.embed_dims == 32
