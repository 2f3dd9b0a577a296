"""SAIMTransformerLayer: every attention pattern against an independent computation, in float64."""
import pytest
import torch
import torch.nn.functional as F
from mmpretrain.models.backbones.vision_transformer import TransformerEncoderLayer

import saim_mm  # noqa: F401
from saim_mm.models.utils import SAIMTransformerLayer

C, HEADS = 16, 2


def layers(seed: int = 0, **kwargs):
    """A SAIMTransformerLayer and mmpretrain's layer with the same (random, non-trivial) weights."""
    torch.manual_seed(seed)
    ours = SAIMTransformerLayer(embed_dims=C, num_heads=HEADS, feedforward_channels=2 * C, **kwargs).double()
    with torch.no_grad():
        for p in ours.parameters():
            p.add_(0.1 * torch.randn_like(p))
    theirs = TransformerEncoderLayer(embed_dims=C, num_heads=HEADS, feedforward_channels=2 * C).double()
    theirs.load_state_dict(ours.state_dict())
    return ours.eval(), theirs.eval()


def reference(layer, x, context=None, allowed=None, bias=None):
    """The block written out by hand: separate q/k/v projections, eager softmax, boolean ``allowed`` mask,
    additive ``bias``."""
    attn = layer.attn
    w, b = attn.qkv.weight, attn.qkv.bias
    y = layer.ln1(x)
    kv = y if context is None else layer.ln1(context)
    q, k, v = (F.linear(t, w[i * C:(i + 1) * C], b[i * C:(i + 1) * C]) for i, t in enumerate((y, kv, kv)))
    q, k, v = (t.unflatten(-1, (HEADS, C // HEADS)).transpose(1, 2) for t in (q, k, v))
    scores = q @ k.transpose(-2, -1) / (C // HEADS)**0.5
    if allowed is not None:
        scores = scores.masked_fill(~allowed, float('-inf'))
    if bias is not None:
        scores = scores + bias
    weights = scores.softmax(-1)
    x = x + attn.proj((weights @ v).transpose(1, 2).flatten(2))
    x = x + layer.ffn.layers[1](layer.ffn.layers[0](layer.ln2(x)))
    return x, weights


def test_keeps_mmpretrains_parameter_names_and_plain_forward():
    ours, theirs = layers()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    x = torch.randn(2, 7, C, dtype=torch.float64)
    torch.testing.assert_close(ours(x), theirs(x), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(ours(x), reference(ours, x)[0], rtol=1e-12, atol=1e-12)


def test_causal_self_attention_sees_only_earlier_tokens():
    ours, _ = layers(1)
    x = torch.randn(2, 6, C, dtype=torch.float64)
    allowed = torch.ones(6, 6, dtype=torch.bool).tril()
    torch.testing.assert_close(ours(x, causal=True), reference(ours, x, allowed=allowed)[0], rtol=1e-12,
                               atol=1e-12)


@pytest.mark.parametrize('causal', [False, True])
def test_cross_attention_to_a_context_through_the_same_norm(causal):
    ours, _ = layers(2)
    x, ctx = torch.randn(2, 5, C, dtype=torch.float64), torch.randn(2, 5, C, dtype=torch.float64)
    allowed = torch.ones(5, 5, dtype=torch.bool).tril() if causal else None
    torch.testing.assert_close(ours(x, context=ctx, causal=causal), reference(ours, x, ctx, allowed)[0],
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize('causal', [False, True])
def test_attention_weights_on_request_leave_the_output_unchanged(causal):
    ours, _ = layers(3)
    x = torch.randn(2, 6, C, dtype=torch.float64)
    out, weights = ours(x, causal=causal, return_attention=True)
    allowed = torch.ones(6, 6, dtype=torch.bool).tril() if causal else None
    ref_out, ref_weights = reference(ours, x, allowed=allowed)
    torch.testing.assert_close(out, ours(x, causal=causal), rtol=1e-12, atol=1e-12)  # eager = SDPA
    torch.testing.assert_close(out, ref_out, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(weights, ref_weights, rtol=1e-12, atol=1e-12)
    assert weights.shape == (2, HEADS, 6, 6)


def test_relative_position_bias_needs_the_grid_and_is_added_to_the_patch_logits():
    ours, _ = layers(4)
    ours.add_rel_pos_bias((2, 3))
    with torch.no_grad():
        ours.rel_pos_bias.table.normal_()
    x = torch.randn(1, 1 + 6, C, dtype=torch.float64)  # a cls token and a 2 x 3 grid
    with pytest.raises(ValueError, match=r'need the patch grid hw=\(H, W\)'):
        ours(x)
    table = ours.rel_pos_bias.table  # (heads, 3, 5): offsets dy in -1..1, dx in -2..2
    bias = torch.zeros(HEADS, 7, 7, dtype=torch.float64)  # the cls row and column get none
    for i in range(6):
        for j in range(6):
            bias[:, 1 + i, 1 + j] = table[:, i // 3 - j // 3 + 1, i % 3 - j % 3 + 2]
    torch.testing.assert_close(ours(x, hw=(2, 3), num_extra_tokens=1), reference(ours, x, bias=bias)[0],
                               rtol=1e-12, atol=1e-12)


def test_window_attention_refuses_what_has_no_window():
    ours, _ = layers(5)
    x = torch.randn(1, 4, C, dtype=torch.float64)
    with pytest.raises(ValueError, match='window attention is self-attention over a patch grid'):
        ours(x, hw=(2, 2), window=2, causal=True)
    with pytest.raises(ValueError, match='need the patch grid'):
        ours(x, window=2)


@pytest.mark.parametrize('cross', [False, True])
def test_activation_checkpointing_gives_the_same_gradients_and_keeps_less(cross):
    ours, _ = layers(6)
    cp, _ = layers(6, with_cp=True)
    cp.train(), ours.train()
    x = torch.randn(2, 9, C, dtype=torch.float64, requires_grad=True)
    ctx = torch.randn(2, 9, C, dtype=torch.float64, requires_grad=True) if cross else None

    def run(layer):
        saved = []

        def pack(t):
            saved.append(t.numel())
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out = layer(x, context=ctx, causal=True)
        inputs = [x] + ([ctx] if cross else [])
        grads = torch.autograd.grad((out**2).sum(), inputs + list(layer.parameters()))
        return out, grads, sum(saved)

    out, grads, kept = run(ours)
    out_cp, grads_cp, kept_cp = run(cp)
    torch.testing.assert_close(out_cp, out, rtol=1e-12, atol=1e-12)
    for g, g_cp in zip(grads, grads_cp):
        torch.testing.assert_close(g_cp, g, rtol=1e-10, atol=1e-12)
    assert kept_cp < kept / 3  # only the block's inputs are kept for the backward pass
