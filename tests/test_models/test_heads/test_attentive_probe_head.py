"""AttentiveProbeHead: one learned query attending to frozen patch tokens, BatchNorm without affine, Linear."""
import math

import pytest
import torch
from mmpretrain.registry import MODELS

import saim_mm  # noqa: F401
from saim_mm.models.heads import AttentiveProbeHead
from tests.conftest import assert_train_steps_change_the_head_only

C, HEADS, CLASSES = 12, 3, 5


def reference_pooling(head: AttentiveProbeHead, tokens: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(d)) v per head, written out, then the head's BatchNorm."""
    B, L, _ = tokens.shape
    d = C // HEADS
    k, v = head.kv(tokens).split(C, dim=-1)
    out = []
    for h in range(HEADS):
        q = head.query[0, 0, h * d:(h + 1) * d]
        kh, vh = k[..., h * d:(h + 1) * d], v[..., h * d:(h + 1) * d]
        attn = torch.softmax(kh @ q / math.sqrt(d), dim=1)  # (B, L)
        out.append((attn[..., None] * vh).sum(1))
    return head.bn(torch.cat(out, dim=1))


def test_pooling_is_multi_head_cross_attention_of_one_query():
    torch.manual_seed(0)
    head = AttentiveProbeHead(CLASSES, C, num_heads=HEADS).eval()
    head.bn.running_mean.normal_()
    head.bn.running_var.uniform_(0.5, 2)
    tokens = torch.randn(2, 7, C)
    assert torch.allclose(head.pre_logits(tokens), reference_pooling(head, tokens), atol=1e-5)
    assert torch.allclose(head(tokens), head.fc(reference_pooling(head, tokens)), atol=1e-5)


def test_feature_maps_raw_tokens_and_tuples_give_the_same_logits():
    torch.manual_seed(0)
    head = AttentiveProbeHead(CLASSES, C, num_heads=HEADS).eval()
    raw = AttentiveProbeHead(CLASSES, C, num_heads=HEADS, num_extra_tokens=1).eval()
    raw.load_state_dict(head.state_dict())
    fmap = torch.randn(2, C, 3, 4)  # (B, C, H, W): out_type='featmap'
    tokens = fmap.flatten(2).transpose(1, 2)  # (B, 12, C)
    with_cls = torch.cat([torch.randn(2, 1, C), tokens], dim=1)  # out_type='raw'
    logits = head((fmap, ))
    assert logits.shape == (2, CLASSES)
    assert torch.allclose(head(tokens), logits, atol=1e-6)
    assert torch.allclose(raw((with_cls, )), logits, atol=1e-6)


def test_parameters_and_batchnorm_without_affine():
    head = AttentiveProbeHead(CLASSES, C, num_heads=HEADS)
    bn = head.bn
    assert bn.affine is False and bn.weight is None and bn.bias is None and bn.eps == 1e-6
    shapes = {n: tuple(p.shape) for n, p in head.named_parameters()}
    assert shapes == {'query': (1, 1, C), 'kv.weight': (2 * C, C), 'kv.bias': (2 * C, ),
                      'fc.weight': (CLASSES, C), 'fc.bias': (CLASSES, )}


@pytest.mark.parametrize('kwargs,feats,message', [
    (dict(num_heads=5), None, 'num_heads=5 must divide in_channels=12'),
    (dict(), torch.zeros(2, C), r'got shape \(2, 12\)'),
    (dict(), torch.zeros(2, 7, 8), r'got \(2, 7, 8\) patch tokens; expected \(B, L > 0, 12\)'),
    (dict(num_extra_tokens=1), torch.zeros(2, 1, C), r'got \(2, 0, 12\) patch tokens'),
])
def test_bad_input_is_named(kwargs, feats, message):
    with pytest.raises(ValueError, match=message):
        AttentiveProbeHead(CLASSES, C, **{'num_heads': HEADS, **kwargs})(feats)


def test_trains_on_cached_tokens_in_a_plain_loop():
    torch.manual_seed(0)
    tokens, labels = torch.randn(16, 6, C), torch.arange(16) % CLASSES
    head = AttentiveProbeHead(CLASSES, C, num_heads=HEADS)
    head.init_weights()
    optim = torch.optim.AdamW(head.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        loss = torch.nn.functional.cross_entropy(head(tokens), labels)
        optim.zero_grad()
        loss.backward()
        optim.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def tiny_probe_cfg(depth: int = 2) -> dict:
    return dict(
        type='ImageClassifier',
        backbone=dict(type='VisionTransformer', arch=dict(embed_dims=C, num_layers=depth, num_heads=HEADS,
                                                          feedforward_channels=2 * C),
                      img_size=16, patch_size=4, frozen_stages=depth, out_type='featmap', final_norm=True),
        head=dict(type='AttentiveProbeHead', num_classes=CLASSES, in_channels=C, num_heads=HEADS))


def test_optimiser_steps_change_the_head_only():
    torch.manual_seed(0)
    model = MODELS.build(tiny_probe_cfg())
    model.init_weights()
    assert_train_steps_change_the_head_only(model, CLASSES, weight_decay=0.5)
