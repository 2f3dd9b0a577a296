"""PrefixCausalAttention: its mask against hand-written matrices, the BlockMask (FlexAttention) path against
the boolean path, and its parameters against SAIMAttention's."""
import pytest
import torch
import torch.nn.functional as F
from torch.nn.attention.flex_attention import BlockMask

import saim_mm  # noqa: F401
from saim_mm.models.utils import PrefixCausalAttention, SAIMAttention, SAIMTransformerLayer

C, HEADS = 16, 2

# L = 6 tokens [cls, z_0, ..., z_4] (N = 5); row i = query token i, column j = key token j
MASKS = {
    1: [[1, 0, 0, 0, 0, 0],
        [1, 1, 0, 0, 0, 0],
        [1, 1, 1, 0, 0, 0],
        [1, 1, 1, 1, 0, 0],
        [1, 1, 1, 1, 1, 0],
        [1, 1, 1, 1, 1, 1]],
    2: [[1, 0, 0, 0, 0, 0],
        [1, 1, 1, 0, 0, 0],
        [1, 1, 1, 0, 0, 0],
        [1, 1, 1, 1, 0, 0],
        [1, 1, 1, 1, 1, 0],
        [1, 1, 1, 1, 1, 1]],
    4: [[1, 0, 0, 0, 0, 0],
        [1, 1, 1, 1, 1, 0],
        [1, 1, 1, 1, 1, 0],
        [1, 1, 1, 1, 1, 0],
        [1, 1, 1, 1, 1, 0],
        [1, 1, 1, 1, 1, 1]],
}


def attention(seed: int = 0, cls=PrefixCausalAttention) -> torch.nn.Module:
    torch.manual_seed(seed)
    attn = cls(embed_dims=C, num_heads=HEADS).double()
    with torch.no_grad():
        for p in attn.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return attn.eval()


def tokens(batch: int, length: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(batch, length, C, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


def test_prefix_mask_equals_the_hand_written_matrices():
    prefix = torch.tensor([1, 2, 4])
    mask = PrefixCausalAttention.prefix_mask(prefix, 6, block_sparse=False)
    assert mask.dtype == torch.bool and mask.shape == (3, 1, 6, 6)
    for b, p in enumerate(prefix.tolist()):
        assert mask[b, 0].int().tolist() == MASKS[p], p


def test_prefix_mask_is_boolean_on_the_cpu_by_default():
    assert isinstance(PrefixCausalAttention.prefix_mask(torch.tensor([2]), 6), torch.Tensor)


def test_block_mask_has_the_same_pattern():
    prefix = torch.tensor([1, 2, 4])
    block = PrefixCausalAttention.prefix_mask(prefix, 6, block_sparse=True)
    assert isinstance(block, BlockMask) and block.shape == (3, 1, 6, 6)
    index = torch.arange(6)
    dense = block.mask_mod(torch.arange(3)[:, None, None, None], torch.zeros(1, 1, 1, 1, dtype=torch.long),
                           index[None, None, :, None], index[None, None, None, :])
    for b, p in enumerate(prefix.tolist()):
        assert dense[b, 0].int().tolist() == MASKS[p], p


@pytest.mark.parametrize('bad', [torch.tensor([[1, 2]]), torch.tensor([1.0, 2.0])])
def test_prefix_mask_refuses_a_prefix_that_is_not_a_batch_of_integers(bad):
    with pytest.raises(ValueError, match=r'prefix_len must be a \(B,\) integer tensor'):
        PrefixCausalAttention.prefix_mask(bad, 6)


def hand_attention(attn: torch.nn.Module, x: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    """The attention branch written out: q/k/v by slices of qkv, eager softmax over the allowed keys."""
    B, L, _ = x.shape
    w, b = attn.qkv.weight, attn.qkv.bias
    q, k, v = (F.linear(x, w[i * C:(i + 1) * C], b[i * C:(i + 1) * C]).unflatten(-1, (HEADS, C // HEADS))
               .transpose(1, 2) for i in range(3))
    scores = (q @ k.transpose(-2, -1) / (C // HEADS)**0.5).masked_fill(~allowed, float('-inf'))
    return attn.proj((scores.softmax(-1) @ v).transpose(1, 2).reshape(B, L, C))


def test_boolean_path_equals_the_written_out_attention():
    attn = attention()
    x = tokens(3, 6)
    prefix = torch.tensor([1, 2, 4])
    allowed = torch.tensor([MASKS[p] for p in prefix.tolist()], dtype=torch.bool)[:, None]
    out = attn(x, attn_mask=PrefixCausalAttention.prefix_mask(prefix, 6, block_sparse=False))
    assert (out - hand_attention(attn, x, allowed)).abs().max() <= 1e-12


@pytest.mark.parametrize('dtype,tol', [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_block_mask_path_equals_the_boolean_path_on_the_cpu(dtype, tol):
    attn = attention().to(dtype)
    x = tokens(3, 17).to(dtype)
    prefix = torch.tensor([1, 5, 15])
    with torch.no_grad():  # FlexAttention has no backward on the CPU
        flex = attn(x, attn_mask=PrefixCausalAttention.prefix_mask(prefix, 17, block_sparse=True))
        dense = attn(x, attn_mask=PrefixCausalAttention.prefix_mask(prefix, 17, block_sparse=False))
    assert (flex - dense).abs().max() <= tol


def test_block_mask_with_gradients_on_the_cpu_uses_the_dense_mask():
    attn = attention()
    x = tokens(2, 9).requires_grad_()
    prefix = torch.tensor([2, 7])
    flex = attn(x, attn_mask=PrefixCausalAttention.prefix_mask(prefix, 9, block_sparse=True))
    grad_flex, = torch.autograd.grad(flex.sum(), x)
    dense = attn(x, attn_mask=PrefixCausalAttention.prefix_mask(prefix, 9, block_sparse=False))
    grad_dense, = torch.autograd.grad(dense.sum(), x)
    assert (flex - dense).abs().max() <= 1e-12 and (grad_flex - grad_dense).abs().max() <= 1e-12


def test_kept_weights_with_a_block_mask_are_zero_exactly_off_the_mask():
    attn = attention()
    attn.keep_weights = True
    prefix = torch.tensor([1, 2, 4])
    with torch.no_grad():
        attn(tokens(3, 6), attn_mask=PrefixCausalAttention.prefix_mask(prefix, 6, block_sparse=True))
    allowed = torch.tensor([MASKS[p] for p in prefix.tolist()], dtype=torch.bool)[:, None].expand(-1, HEADS, -1, -1)
    assert attn.weights.shape == (3, HEADS, 6, 6)
    assert torch.equal(attn.weights > 0, allowed)


def test_block_mask_is_not_combined_with_is_causal():
    attn = attention()
    q = torch.zeros(1, HEADS, 6, C // HEADS, dtype=torch.float64)
    with pytest.raises(ValueError, match='BlockMask is not combined with is_causal'):
        attn.attend(q, q, q, PrefixCausalAttention.prefix_mask(torch.tensor([2]), 6, block_sparse=True), True)


@pytest.mark.parametrize('call', [dict(), dict(is_causal=True), dict(context=True)])
def test_without_a_prefix_mask_it_is_saim_attention(call):
    ours, theirs = attention(cls=PrefixCausalAttention), attention(cls=SAIMAttention)
    assert ours.state_dict().keys() == theirs.state_dict().keys()
    theirs.load_state_dict(ours.state_dict())
    x = tokens(2, 6)
    kwargs = dict(call, context=tokens(2, 6, seed=2)) if 'context' in call else call
    assert torch.equal(ours(x, **kwargs), theirs(x, **kwargs))


def test_chosen_by_attn_cfg_in_a_block_with_saim_attention_parameters():
    torch.manual_seed(0)
    plain = SAIMTransformerLayer(embed_dims=C, num_heads=HEADS, feedforward_channels=2 * C)
    prefix = SAIMTransformerLayer(embed_dims=C, num_heads=HEADS, feedforward_channels=2 * C,
                                  attn_cfg=dict(type='PrefixCausalAttention'))
    assert type(prefix.attn) is PrefixCausalAttention
    assert plain.state_dict().keys() == prefix.state_dict().keys()
    prefix.load_state_dict(plain.state_dict())  # strict


@pytest.mark.parametrize('block_sparse', [True, False, None])
def test_block_sparse_key_chooses_the_mask_the_encoder_builds(block_sparse):
    from mmpretrain.registry import MODELS
    torch.manual_seed(0)
    encoder = MODELS.build(dict(
        type='SAIMViT', img_size=16, patch_size=4, arch=dict(embed_dims=C, num_layers=2, num_heads=HEADS,
                                                               feedforward_channels=2 * C),
        layer_cfgs=dict(attn_cfg=dict(type='PrefixCausalAttention', block_sparse=block_sparse))))
    encoder.eval()
    built = []
    prefix_mask = PrefixCausalAttention.prefix_mask
    encoder.layers[0].attn.prefix_mask = lambda *a, **k: built.append(prefix_mask(*a, **k)) or built[-1]
    x, order, prefix = torch.randn(2, 3, 16, 16), torch.arange(16).expand(2, -1), torch.tensor([1, 5])
    with torch.no_grad():
        out = encoder(x, order=order, prefix_len=prefix)[0][-1]
        encoder.layers[0].attn.block_sparse = False
        dense = encoder(x, order=order, prefix_len=prefix)[0][-1]
    assert isinstance(built[0], BlockMask) == bool(block_sparse)  # None: a boolean mask on the CPU
    assert torch.allclose(out, dense, atol=1e-5)


def test_block_sparse_key_refuses_other_values():
    with pytest.raises(ValueError, match="attn_cfg.block_sparse must be None, True or False, got 'cuda'"):
        PrefixCausalAttention(embed_dims=C, num_heads=HEADS, block_sparse='cuda')
