"""A bad model config fails when the model is built (Runner construction), naming the key and what is allowed.

Each case changes one key of configs/saim/demo_cpu.py (4 encoder blocks, 4x4 patches on 32x32 images).
"""
import re

import pytest
from mmengine.runner import Runner
from mmpretrain.registry import MODELS

import saim_mm  # noqa: F401
from tests.conftest import demo_train_cfg

BAD = {
    'patch size does not divide the image size': (
        {'model.backbone.img_size': 30},
        'img_size (30, 30) is not divisible by patch_size 4: both sides must be multiples of the patch size '
        '(e.g. 28 or 32)'),
    'decoder depth does not divide the encoder depth': (
        {'model.neck.num_layers': 3},
        'neck.num_layers=3 must divide the encoder depth 4; allowed: [1, 2, 4] (or give neck.context_layers)'),
    'decoder depth 0 with the stochastic order': (
        {'model.neck.num_layers': 0},
        'neck.num_layers=0 (no query stream) needs a fixed order'),
    'unknown order mode': (
        {'model.order': 'zigzag'},
        "SAIM order must be one of ('centre_out', 'checkerboard', 'fixed_random', 'random_segments', 'raster', "
        "'semantic', 'spiral', 'stochastic') or a config dict of a registered order, got 'zigzag'"),
    'even Gaussian kernel': (
        {'model.head.kernel_size': 4},
        'GaussianPixelLoss kernel_size must be a positive odd int or None, got 4'),
    'zero Gaussian kernel': (
        {'model.head.kernel_size': 0},
        'GaussianPixelLoss kernel_size must be a positive odd int or None, got 0'),
    'negative Gaussian kernel': (
        {'model.head.kernel_size': -3},
        'GaussianPixelLoss kernel_size must be a positive odd int or None, got -3'),
    'non-positive Gaussian sigma': (
        {'model.head.sigma': 0.0},
        'GaussianPixelLoss sigma must be a positive number, got 0.0'),
    'head patch size differs from the backbone': (
        {'model.head.patch_size': 8},
        'head.patch_size=8 differs from backbone.patch_size=4; it must be 4'),
    'decoder patch size differs from the backbone': (
        {'model.neck.patch_size': 8},
        'neck.patch_size=8 differs from backbone.patch_size=4; it must be 4'),
    'decoder heads do not divide the decoder width': (
        {'model.neck.embed_dims': 64, 'model.neck.num_heads': 3},
        'SAIMDecoder num_heads=3 does not divide embed_dims=64.'),
    'decoder reads encoder blocks that do not fit': (
        {'model.neck.num_layers': 3, 'model.neck.context_layers': [1, 3, 5]},
        'neck.context_layers=[1, 3, 5] must list 3 increasing encoder blocks in 1..4.'),
    'partial prediction of more patches than there are': (
        {'model.neck.num_predict': 65},
        'neck.num_predict=65 exceeds the 64 patches.'),
    'unknown predictor': (
        {'model.neck.predictor': 'conv'},
        "SAIMDecoder predictor must be one of ('mlp', 'linear'), got 'conv'"),
}


@pytest.mark.parametrize('case', sorted(BAD))
def test_bad_config_fails_at_build_time(case, demo_data, tmp_path):
    options, message = BAD[case]
    cfg = demo_train_cfg(demo_data, str(tmp_path / 'work'), **options)
    with pytest.raises(ValueError, match=re.escape(message)):
        MODELS.build(cfg.model)
    with pytest.raises(ValueError, match=re.escape(message)):  # tools/train.py: before any training
        Runner.from_cfg(cfg)


def test_the_unchanged_demo_config_builds(demo_data, tmp_path):
    Runner.from_cfg(demo_train_cfg(demo_data, str(tmp_path / 'work')))
