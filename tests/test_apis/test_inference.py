"""saim_mm.apis: features, attention maps, reconstruction and completion of a tiny SAIM model."""
import glob
import os.path as osp

import pytest
import torch

import saim_mm  # noqa: F401
from saim_mm.apis import attention_maps, complete, extract_features, load_image, reconstruct



def test_extract_features_cls_and_mean_of_the_plain_forward(demo_model, demo_data):
    paths = sorted(glob.glob(osp.join(demo_data, 'val', '*', '*.png')))[:2]
    x = torch.cat([load_image(p, demo_model) for p in paths])
    assert x.shape == (2, 3, 32, 32)
    cls, mean = extract_features(demo_model, paths, pool=('cls', 'mean'))
    assert cls.shape == mean.shape == (2, 96)
    assert torch.equal(extract_features(demo_model, x), cls)
    assert torch.equal(cls, demo_model.backbone(x)[-1])  # the backbone's own cls_token output
    backbone = demo_model.backbone
    with torch.no_grad():  # mean of the patch tokens after the final norm
        tokens = backbone.pre_norm(torch.cat([backbone.cls_token.expand(2, -1, -1),
                                              backbone.patch_embed(x)[0]], 1) + backbone.pos_embed)
        for layer in backbone.layers:
            tokens = layer(tokens)
        tokens = backbone.ln1(tokens)
    assert torch.allclose(mean, tokens[:, 1:].mean(1), atol=1e-5)
    patches = extract_features(demo_model, x, pool='patches')
    assert patches.shape == (2, 64, 96)
    assert torch.allclose(patches, tokens[:, 1:], atol=1e-5)
    assert backbone.out_type == 'cls_token'  # left as it was
    with pytest.raises(ValueError, match='pool must be one of'):
        extract_features(demo_model, x, pool='max')
    with pytest.raises(ValueError, match=r'images must be \(B, 3, H, W\)'):
        extract_features(demo_model, x[0])


def test_attention_rows_sum_to_one_for_any_block(demo_model):
    x = torch.randn(2, 3, 32, 32)
    attn = attention_maps(demo_model, x)
    assert attn.shape == (2, 3, 65, 65)
    assert torch.allclose(attn.sum(-1), torch.ones(2, 3, 65))
    first = attention_maps(demo_model, x, layer=0)
    assert first.shape == attn.shape and not torch.allclose(first, attn)
    # block 0 sees the embedded tokens: its attention is softmax(q k^T / sqrt(d)) of them
    backbone = demo_model.backbone
    tokens = backbone.pre_norm(torch.cat([backbone.cls_token.expand(2, -1, -1), backbone.patch_embed(x)[0]], 1)
                               + backbone.pos_embed)
    layer = backbone.layers[0]
    q, k, _ = layer.attn.qkv(layer.ln1(tokens)).reshape(2, 65, 3, 3, 32).permute(2, 0, 3, 1, 4)
    expected = (q @ k.transpose(-2, -1) * 32**-0.5).softmax(-1)
    assert torch.allclose(first, expected, atol=1e-6)


def test_reconstruct_is_the_model_prediction_in_raster_order(demo_model):
    x = torch.randn(1, 3, 32, 32)
    order = torch.randperm(64)[None]
    target, pred = reconstruct(demo_model, x, order)
    assert target.shape == pred.shape == (1, 3, 32, 32)
    head = demo_model.head
    raw = head.patchify(head.smooth(x))
    std = (raw.var(-1, keepdim=True) + 1e-6)**.5
    mean = raw[0, order[0]].mean(-1, keepdim=True)
    expected = demo_model.predict_patches(x, order) * std[0, order[0]] + mean
    assert torch.allclose(head.patchify(pred)[0, order[0]], expected[0], atol=1e-5)


def test_reconstruct_draws_the_order_as_the_model_does(demo_model):
    x = torch.randn(2, 3, 32, 32)
    torch.manual_seed(1)
    drawn = reconstruct(demo_model, x)[1]
    torch.manual_seed(1)
    order = demo_model.sample_order(2, x.device)
    assert torch.equal(drawn, reconstruct(demo_model, x, order)[1])


def test_complete_keeps_the_given_patches_and_fills_the_rest(demo_model):
    x = torch.randn(1, 3, 32, 32)
    keep = torch.zeros(64, dtype=torch.bool)
    keep[:32] = True
    out = demo_model.head.patchify(complete(demo_model, x, keep))
    given = demo_model.head.patchify(x)
    assert torch.equal(out[0, :32], given[0, :32])
    assert not torch.allclose(out[0, 32:], given[0, 32:])
    # causality: the first generated patch (row 4) depends only on what comes before it; rows 5-7 are
    # changed (not row 4, whose pixels the 3x3 smoothing of the kept rows' statistics reaches)
    other = x.clone()
    other[..., 20:, :] = torch.randn(1, 3, 12, 32)
    first = demo_model.head.patchify(complete(demo_model, other, keep))[0, 32]
    assert torch.allclose(first, out[0, 32], atol=1e-6)
    with pytest.raises(ValueError, match='exactly the patches that keep leaves out'):
        complete(demo_model, x, keep, order=torch.arange(10))
    with pytest.raises(ValueError, match='complete takes one image'):
        complete(demo_model, x.expand(2, -1, -1, -1), keep)
