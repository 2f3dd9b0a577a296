"""BlockAverageNeck: the average of several block outputs, for the layer-averaged attentive probe."""
import pytest
import torch
from mmpretrain.registry import MODELS

import saim_mm  # noqa: F401
from saim_mm.models.necks import BlockAverageNeck
from tests.conftest import assert_train_steps_change_the_head_only

C, HEADS, CLASSES, DEPTH = 12, 3, 5, 4


def test_output_is_the_written_out_average():
    a, b, c = (torch.randn(2, 5, C, dtype=torch.float64) for _ in range(3))
    out = BlockAverageNeck(num_inputs=3)((a, b, c))
    assert isinstance(out, tuple) and len(out) == 1
    assert torch.allclose(out[0], (a + b + c) / 3, atol=1e-15, rtol=0)
    cls_tokens = [torch.randn(2, C) for _ in range(2)]
    assert torch.allclose(BlockAverageNeck()(cls_tokens)[0], (cls_tokens[0] + cls_tokens[1]) / 2, atol=1e-7)


def test_normalize_standardises_each_output_over_its_channels_first():
    eps = 1e-6

    def standardised(x, dim):
        mean = x.mean(dim, keepdim=True)
        return (x - mean) / torch.sqrt(((x - mean)**2).mean(dim, keepdim=True) + eps)

    tokens = [3 * torch.randn(2, 5, C, dtype=torch.float64) + 1 for _ in range(2)]
    out = BlockAverageNeck(normalize=True, eps=eps)(tokens)[0]
    assert torch.allclose(out, (standardised(tokens[0], -1) + standardised(tokens[1], -1)) / 2, atol=1e-12)
    maps = [torch.randn(2, C, 3, 4, dtype=torch.float64) for _ in range(2)]  # channels in dim 1
    out = BlockAverageNeck(normalize=True, eps=eps)(maps)[0]
    assert torch.allclose(out, (standardised(maps[0], 1) + standardised(maps[1], 1)) / 2, atol=1e-12)


@pytest.mark.parametrize('kwargs,feats,message', [
    (dict(num_inputs=0), None, 'num_inputs must be a positive int .* got 0'),
    (dict(normalize='yes'), None, "normalize must be True or False, got 'yes'"),
    (dict(num_inputs=2), (torch.zeros(2, 5, C), ), r'got 1 block outputs: set backbone.out_indices to 2 blocks'),
    (dict(), (torch.zeros(2, 5, C), torch.zeros(2, 4, C)), r'one shape, got shapes \[\(2, 4, 12\), \(2, 5, 12\)\]'),
    (dict(), (), r'tuple of block outputs \(tensors\), got \[\]'),
])
def test_bad_input_is_named(kwargs, feats, message):
    with pytest.raises(ValueError, match=message):
        BlockAverageNeck(**kwargs)(feats)


def probe_cfg(out_indices=(2, 3)) -> dict:
    """A frozen SAIMViT returning raw tokens of several blocks, the neck, and the attentive head."""
    return dict(
        type='ImageClassifier',
        backbone=dict(type='SAIMViT', arch=dict(embed_dims=C, num_layers=DEPTH, num_heads=HEADS,
                                                feedforward_channels=2 * C),
                      img_size=16, patch_size=4, out_indices=list(out_indices), out_type='raw', final_norm=False,
                      frozen_stages=DEPTH),
        neck=dict(type='BlockAverageNeck', num_inputs=len(out_indices)),
        head=dict(type='AttentiveProbeHead', num_classes=CLASSES, in_channels=C, num_heads=HEADS,
                  num_extra_tokens=1))


def test_the_probe_reads_the_average_of_the_listed_blocks():
    torch.manual_seed(0)
    model = MODELS.build(probe_cfg()).eval()
    images = torch.randn(2, 3, 16, 16)
    feats = model.extract_feat(images)
    h = model.backbone.pre_norm(torch.cat([model.backbone.cls_token.expand(2, -1, -1),
                                           model.backbone.patch_embed(images)[0]], 1) + model.backbone.pos_embed)
    outputs = []
    for layer in model.backbone.layers:
        h = layer(h)
        outputs.append(h)
    assert len(feats) == 1 and feats[0].shape == (2, 1 + 16, C)
    assert torch.allclose(feats[0], (outputs[2] + outputs[3]) / 2, atol=1e-6)


def test_train_step_changes_the_head_only():
    torch.manual_seed(0)
    model = MODELS.build(probe_cfg())
    model.init_weights()
    assert not [n for n, _ in model.neck.named_parameters()]  # the neck has nothing to learn
    assert_train_steps_change_the_head_only(model, CLASSES)
