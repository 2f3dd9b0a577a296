import pytest
import torch
from mmpretrain.registry import MODELS

from tests.conftest import build_tiny_saim, tiny_saim_cfg


def test_loss_backward_reaches_every_trainable_parameter():
    torch.manual_seed(0)
    model = build_tiny_saim().train()
    loss = model.loss(torch.randn(2, 3, 16, 16))['loss']
    loss.backward()
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    assert 'backbone.pos_embed' not in trainable and 'backbone.ln1.weight' not in trainable
    missing = [n for n, p in trainable.items() if p.grad is None or p.grad.abs().sum() == 0]
    assert not missing, missing


def test_explicit_order_is_used_and_checked():
    torch.manual_seed(0)
    model = build_tiny_saim()
    x = torch.randn(2, 3, 16, 16)
    order = torch.stack([torch.randperm(16) for _ in range(2)])
    assert model.loss(x, order=order)['loss'] == model.loss(x, order=order)['loss']
    assert model.loss(x, order=order)['loss'] != model.loss(x, order=order.flip(1))['loss']
    with pytest.raises(ValueError, match='permutation'):
        model.loss(x, order=torch.zeros(2, 16, dtype=torch.long))


def test_forward_modes_through_data_preprocessor():
    model = build_tiny_saim()
    data = dict(inputs=torch.randint(0, 255, (2, 3, 16, 16), dtype=torch.uint8),
                data_samples=None)
    data = model.data_preprocessor(data, True)
    losses = model(**data, mode='loss')
    assert losses['loss'].dim() == 0 and torch.isfinite(losses['loss'])
    feats = model(data['inputs'], mode='tensor')
    assert feats[0].shape == (2, 32)  # cls token of the plain ViT


def test_shared_weights_linear_head_l1_no_smoothing_build_and_train():
    model = build_tiny_saim(shared=True, predictor='linear', kernel_size=None, criterion='L1',
                            norm_pix=False, dec_depth=2)
    n_sep = sum(p.numel() for p in build_tiny_saim(dec_depth=2).parameters())
    assert sum(p.numel() for p in model.parameters()) < n_sep
    model.loss(torch.randn(1, 3, 16, 16))['loss'].backward()


@pytest.mark.parametrize('dec_depth', [3, 5])
def test_decoder_depth_must_divide_encoder_depth(dec_depth):
    with pytest.raises(ValueError, match=rf'neck.num_layers={dec_depth} must divide the encoder depth 4'):
        MODELS.build(tiny_saim_cfg(depth=4, dec_depth=dec_depth))


def test_unknown_order_mode_is_refused():
    with pytest.raises(ValueError, match=r"order must be one of \('centre_out', 'checkerboard', .*'raster', "
                                         r"'semantic', 'spiral', 'stochastic'\) or a config dict of a "
                                         r"registered order, got 'zigzag'"):
        MODELS.build(tiny_saim_cfg(order='zigzag'))


def test_depth0_needs_a_fixed_order():
    for order in ('stochastic', 'random_segments'):
        with pytest.raises(ValueError, match='num_layers=0 .* needs a fixed order'):
            MODELS.build(tiny_saim_cfg(dec_depth=0, order=order))
    for order in ('raster', 'spiral', 'centre_out', 'checkerboard', 'fixed_random'):
        build_tiny_saim(dec_depth=0, order=order).loss(torch.randn(1, 3, 16, 16))


@pytest.mark.parametrize('part,cfg,base', [
    ('head', dict(type='MAEPretrainHead', patch_size=4, loss=dict(type='PixelReconstructionLoss', criterion='L2')),
     'BaseTargetHead'),
    ('neck', dict(type='MAEPretrainDecoder', num_patches=16, patch_size=4, embed_dim=32, decoder_embed_dim=32,
                  decoder_depth=1, decoder_num_heads=2), 'BaseDecoder'),
])
def test_a_part_without_the_contract_is_refused(part, cfg, base):
    bad = tiny_saim_cfg()
    bad[part] = cfg
    with pytest.raises(TypeError, match=f'SAIM {part} must be a {base} '):
        MODELS.build(bad)
