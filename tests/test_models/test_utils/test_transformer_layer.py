"""SAIMTransformerLayer and SAIMAttention: every attention pattern against an independent computation, in
float64; the attention chosen by class."""
import pytest
import torch
import torch.nn.functional as F
from mmpretrain.models.backbones.vision_transformer import TransformerEncoderLayer

import saim_mm  # noqa: F401
from saim_mm.models.utils import SAIMAttention, SAIMTransformerLayer

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
    torch.testing.assert_close(ours(x, is_causal=True), reference(ours, x, allowed=allowed)[0], rtol=1e-12,
                               atol=1e-12)


@pytest.mark.parametrize('causal', [False, True])
def test_cross_attention_to_a_context_through_the_same_norm(causal):
    ours, _ = layers(2)
    x, ctx = torch.randn(2, 5, C, dtype=torch.float64), torch.randn(2, 5, C, dtype=torch.float64)
    allowed = torch.ones(5, 5, dtype=torch.bool).tril() if causal else None
    torch.testing.assert_close(ours(x, context=ctx, is_causal=causal), reference(ours, x, ctx, allowed)[0],
                               rtol=1e-12, atol=1e-12)


def test_a_mask_limits_what_each_query_sees():
    ours, _ = layers(7)
    x, ctx = torch.randn(2, 5, C, dtype=torch.float64), torch.randn(2, 6, C, dtype=torch.float64)
    allowed = torch.rand(5, 6, generator=torch.Generator().manual_seed(0)) < 0.6
    allowed[:, 0] = True  # every query sees at least one key
    torch.testing.assert_close(ours(x, context=ctx, attn_mask=allowed), reference(ours, x, ctx, allowed)[0],
                               rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match='causal attention takes no additional mask'):
        ours(x, attn_mask=torch.ones(5, 5, dtype=torch.bool), is_causal=True)


@pytest.mark.parametrize('causal', [False, True])
def test_the_attention_module_keeps_its_weights_on_request_with_the_same_output(causal):
    ours, _ = layers(3)
    x = torch.randn(2, 6, C, dtype=torch.float64)
    plain = ours(x, is_causal=causal)
    assert ours.attn.weights is None
    ours.attn.keep_weights = True
    out = ours(x, is_causal=causal)
    weights = ours.attn.weights
    allowed = torch.ones(6, 6, dtype=torch.bool).tril() if causal else None
    ref_out, ref_weights = reference(ours, x, allowed=allowed)
    torch.testing.assert_close(out, plain, rtol=1e-12, atol=1e-12)  # eager = SDPA
    torch.testing.assert_close(out, ref_out, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(weights, ref_weights, rtol=1e-12, atol=1e-12)
    assert weights.shape == (2, HEADS, 6, 6)


class ScaledAttention(SAIMAttention):
    """A test attention class: SAIMAttention with a learned output gain (a parameter of its own)."""

    def __init__(self, *args, gain: float = 1.0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.gain = torch.nn.Parameter(torch.full((1, ), gain))

    def forward(self, x, context=None, attn_mask=None, is_causal=False):
        return self.gain * super().forward(x, context=context, attn_mask=attn_mask, is_causal=is_causal)


def test_the_attention_is_chosen_by_class_and_leaves_the_seeded_weights_alone():
    torch.manual_seed(0)
    plain = SAIMTransformerLayer(embed_dims=C, num_heads=HEADS, feedforward_channels=2 * C)
    after_plain = torch.rand(1)
    torch.manual_seed(0)
    scaled = SAIMTransformerLayer(embed_dims=C, num_heads=HEADS, feedforward_channels=2 * C,
                                  attn_cfg=dict(type=ScaledAttention, gain=2.0))
    assert torch.equal(torch.rand(1), after_plain)  # the same random stream after either class
    assert type(plain.attn) is SAIMAttention and type(scaled.attn) is ScaledAttention
    shared = plain.state_dict()
    assert list(scaled.state_dict()) == list(shared)[:2] + ['attn.gain'] + list(shared)[2:]
    assert all(torch.equal(scaled.state_dict()[k], v) for k, v in shared.items())
    x = torch.randn(2, 4, C)
    attn_plain = plain.attn(plain.ln1(x))
    torch.testing.assert_close(scaled.attn(scaled.ln1(x)), 2 * attn_plain)


def test_an_attention_that_is_not_registered_or_not_a_saim_attention_is_refused():
    with pytest.raises(KeyError, match="attn_cfg type 'NoSuchAttention' is not a registered attention"):
        SAIMTransformerLayer(embed_dims=C, num_heads=HEADS, feedforward_channels=2 * C,
                             attn_cfg=dict(type='NoSuchAttention'))
    with pytest.raises(TypeError, match='must be a subclass of SAIMAttention'):
        SAIMTransformerLayer(embed_dims=C, num_heads=HEADS, feedforward_channels=2 * C,
                             attn_cfg=dict(type=torch.nn.Identity))


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
            out = layer(x, context=ctx, is_causal=True)
        inputs = [x] + ([ctx] if cross else [])
        grads = torch.autograd.grad((out**2).sum(), inputs + list(layer.parameters()))
        return out, grads, sum(saved)

    out, grads, kept = run(ours)
    out_cp, grads_cp, kept_cp = run(cp)
    torch.testing.assert_close(out_cp, out, rtol=1e-12, atol=1e-12)
    for g, g_cp in zip(grads, grads_cp):
        torch.testing.assert_close(g_cp, g, rtol=1e-10, atol=1e-12)
    assert kept_cp < kept / 3  # only the block's inputs are kept for the backward pass
