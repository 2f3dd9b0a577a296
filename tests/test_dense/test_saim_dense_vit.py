"""SAIMDenseViT and its attention (WindowRelPosAttention): multi-level outputs, window attention, relative position
bias, pos-embed resizing, activation checkpointing, scoped names."""
import pytest
import torch

import saim_mm  # noqa: F401
from saim_mm.dense import SAIMDenseViT, ViTPyramidNeck
from saim_mm.dense.window_attention import RelativePositionBias, WindowRelPosAttention
from saim_mm.models.backbones import SAIMViT
from saim_mm.models.utils import SAIMAttention, SAIMTransformerLayer

ARCH = dict(embed_dims=32, num_layers=4, num_heads=2, feedforward_channels=64)


def randomise(model: torch.nn.Module) -> torch.nn.Module:
    """Make every parameter (relative position biases included) non-trivial, then eval mode."""
    torch.manual_seed(0)
    model.init_weights()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    model.eval()
    return model


def dense(**kwargs) -> SAIMDenseViT:
    cfg = dict(arch=ARCH, img_size=32, patch_size=4, out_indices=[0, 1, 2, 3], out_type='featmap',
               final_norm=False)
    cfg.update(kwargs)
    return SAIMDenseViT(**cfg)


@pytest.mark.parametrize('size', [(32, 32), (48, 64), (64, 40), (20, 36)])
@pytest.mark.parametrize('windowed', [True, False])
def test_multi_level_outputs_have_stride_p_for_any_divisible_size(size, windowed):
    kwargs = dict(window_size=3, global_attn_indexes=[1, 3], use_cls_token=False) if windowed else {}
    model = randomise(dense(use_rel_pos_bias=True, **kwargs))
    outs = model(torch.randn(2, 3, *size))
    assert len(outs) == 4
    for o in outs:
        assert o.shape == (2, 32, size[0] // 4, size[1] // 4)  # stride 4 = patch size
        assert torch.isfinite(o).all()


@pytest.mark.parametrize('grid', [(6, 6), (4, 6), (5, 3)])
def test_window_covering_the_whole_image_equals_global_attention(grid):
    """Window = the whole grid (padded and masked where it is not square) gives global attention."""
    size = (grid[0] * 4, grid[1] * 4)
    glob = randomise(dense(img_size=size, use_rel_pos_bias=True, use_cls_token=False))
    win = dense(img_size=size, use_rel_pos_bias=True, use_cls_token=False, window_size=max(grid),
                global_attn_indexes=[2])
    shared = {k: v for k, v in glob.state_dict().items() if 'rel_pos_bias' not in k}
    assert len(win.load_state_dict(shared, strict=False).missing_keys) == 4
    for i, layer in enumerate(win.layers):
        table = glob.layers[i].attn.rel_pos_bias.table.data
        if i != 2:  # a window of side S holds offsets -(S-1)..S-1; copy the global table into its middle
            t = layer.attn.rel_pos_bias.table.data.zero_()
            S = max(grid)
            t[:, S - grid[0]:S + grid[0] - 1, S - grid[1]:S + grid[1] - 1] = table
        else:
            layer.attn.rel_pos_bias.table.data.copy_(table)
    win.eval()
    x = torch.randn(2, 3, *size)
    for a, b in zip(win(x), glob(x)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_window_attention_is_local_and_differs_from_global():
    """With 3x3 windows on a 6x6 grid a change inside one window reaches no other window in that block."""
    model = randomise(dense(img_size=24, out_indices=[0], window_size=3, use_cls_token=False))
    x = torch.randn(1, 3, 24, 24)
    y = x.clone()
    y[..., :12, :12] += 1.0  # the top-left window (patches 0..2 x 0..2)
    a, b = model(x)[0], model(y)[0]
    changed = (a - b).abs().amax(dim=1)[0] > 1e-6  # (6, 6)
    assert changed[:3, :3].all() and not changed[3:].any() and not changed[:, 3:].any()
    glob = dense(img_size=24, out_indices=[0], use_cls_token=False)
    glob.load_state_dict(model.state_dict())
    glob.eval()
    changed = (glob(x)[0] - glob(y)[0]).abs().amax(dim=1)[0] > 1e-6
    assert changed.all()  # global attention: everything changes


def test_relative_position_bias_starts_at_zero_and_keeps_the_pretrained_function():
    torch.manual_seed(0)
    plain = dense(use_rel_pos_bias=False)
    plain.init_weights()
    biased = dense(use_rel_pos_bias=True)
    missing = biased.load_state_dict(plain.state_dict(), strict=False).missing_keys
    assert sorted(missing) == [f'layers.{i}.attn.rel_pos_bias.table' for i in range(4)]
    assert all((layer.attn.rel_pos_bias.table == 0).all() for layer in biased.layers)
    assert biased.layers[0].attn.rel_pos_bias.table.shape == (2, 15, 15)  # 8x8 grid of the 32^2 img_size
    plain.eval(), biased.eval()
    x = torch.randn(1, 3, 32, 48)
    for a, b in zip(plain(x), biased(x)):  # mmpretrain's forward vs the dense forward with a zero bias
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    # and the bias does act once it is learned
    with torch.no_grad():
        biased.layers[0].attn.rel_pos_bias.table.normal_()
    assert not torch.allclose(plain(x)[0], biased(x)[0])


def test_position_embedding_is_resized_and_bad_sizes_are_refused():
    model = randomise(dense(use_cls_token=False, window_size=4))
    out = model(torch.randn(1, 3, 40, 72))[0]
    assert out.shape == (1, 32, 10, 18)
    with pytest.raises(ValueError, match='Input image size 30x32 is not divisible by the patch size 4'):
        model(torch.randn(1, 3, 30, 32))


def test_drop_path_rate_is_linear_over_blocks_and_stochastic_in_training():
    model = dense(drop_path_rate=0.3, window_size=2, use_cls_token=False)
    rates = [layer.attn.out_drop.drop_prob for layer in model.layers]
    assert rates == pytest.approx([0.0, 0.1, 0.2, 0.3])
    model.init_weights()
    model.train()
    x = torch.randn(4, 3, 16, 16)
    torch.manual_seed(1)
    a = model(x)[-1]
    torch.manual_seed(2)
    b = model(x)[-1]
    assert not torch.allclose(a, b)


def test_defaults_keep_the_pretraining_backbone():
    model = SAIMDenseViT(arch=ARCH, img_size=16, patch_size=4)
    assert model.window_size == 0 and model.use_cls_token
    assert not any('rel_pos_bias' in k for k in model.state_dict())
    assert model.cls_token.requires_grad
    plain = SAIMViT(arch=ARCH, img_size=16, patch_size=4)
    assert plain.state_dict().keys() == model.state_dict().keys()


def test_pretraining_backbone_points_to_the_dense_one_for_dense_options():
    with pytest.raises(TypeError, match=r"SAIMViT got \['window_size'\]: these are options of SAIMDenseViT"):
        SAIMViT(arch=ARCH, img_size=16, patch_size=4, window_size=4)


def test_dense_options_are_checked():
    with pytest.raises(ValueError, match='needs use_cls_token=False'):
        dense(window_size=4)
    with pytest.raises(ValueError, match=r'global_attn_indexes \[4\] name blocks outside the 4 blocks'):
        dense(window_size=4, use_cls_token=False, global_attn_indexes=[4])
    with pytest.raises(ValueError, match='window_size must be an int >= 0'):
        dense(window_size=-1, use_cls_token=False)
    with pytest.raises(ValueError, match="out_type='cls_token' needs use_cls_token=True"):
        SAIMDenseViT(arch=ARCH, img_size=16, patch_size=4, use_cls_token=False)
    model = dense(use_cls_token=False)
    assert not model.cls_token.requires_grad  # kept for loading, unused, so frozen


def test_pretrained_init_without_checkpoint_says_how_to_give_it():
    model = dense(init_cfg=dict(type='Pretrained', checkpoint=None, prefix='backbone.'))
    with pytest.raises(ValueError, match='model.backbone.init_cfg.checkpoint='):
        model.init_weights()


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg'])
def test_scoped_names_resolve_in_mmdet_and_mmseg_registries(scope):
    """mmdet / mmseg configs name saim_mm's classes as ``mmpretrain.<name>``: one class, one registry."""
    import importlib

    from saim_mm.dense import BackboneLayerDecayOptimWrapperConstructor
    from saim_mm.engine.hooks import AtomicCheckpointHook, NonFiniteLossHook
    registry = importlib.import_module(f'{scope}.registry')
    assert registry.MODELS.get('mmpretrain.SAIMDenseViT') is SAIMDenseViT
    assert registry.MODELS.get('mmpretrain.ViTPyramidNeck') is ViTPyramidNeck
    assert registry.HOOKS.get('mmpretrain.AtomicCheckpointHook') is AtomicCheckpointHook
    assert registry.HOOKS.get('mmpretrain.NonFiniteLossHook') is NonFiniteLossHook
    assert (registry.OPTIM_WRAPPER_CONSTRUCTORS.get('mmpretrain.BackboneLayerDecayOptimWrapperConstructor')
            is BackboneLayerDecayOptimWrapperConstructor)
    # nothing of saim_mm is copied into the downstream registries any more
    assert 'SAIMDenseViT' not in registry.MODELS.module_dict and 'SAIMViT' not in registry.MODELS.module_dict


def test_relative_position_bias_keeps_offsets_for_other_grid_sizes():
    bias = RelativePositionBias(num_heads=1, size=(3, 4))
    with torch.no_grad():
        bias.table.copy_(torch.arange(5 * 7, dtype=torch.float).view(1, 5, 7))
    full = bias(3, 4)[0]  # (12, 12)
    assert full[0, 0] == bias.table[0, 2, 3]  # offset (0, 0) is the middle of the table
    assert full[5, 0] == bias.table[0, 2 + 1, 3 + 1]  # token (1, 1) vs token (0, 0): offset (1, 1)
    small = bias(2, 3)[0]  # a smaller grid sees the same value for the same offset
    assert small[4, 0] == full[5, 0]
    large = bias(5, 6)[0]  # offsets beyond the table take the farthest learned one
    assert large[5 * 6 - 1, 0] == bias.table[0, 4, 6]


def block(seed: int, **attn) -> SAIMTransformerLayer:
    """A float64 block with a WindowRelPosAttention and random, non-trivial weights (bias table included)."""
    torch.manual_seed(seed)
    layer = SAIMTransformerLayer(embed_dims=16, num_heads=2, feedforward_channels=32,
                                 attn_cfg=dict(type='WindowRelPosAttention', **attn)).double()
    with torch.no_grad():
        for p in layer.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return layer.eval()


def by_hand(layer: SAIMTransformerLayer, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """The block written out with eager softmax and an additive (heads, L, L) ``bias`` (-inf = no attention)."""
    attn, C = layer.attn, 16
    y = layer.ln1(x)
    q, k, v = (t.unflatten(-1, (2, C // 2)).transpose(1, 2) for t in attn.qkv(y).chunk(3, dim=-1))
    weights = (q @ k.transpose(-2, -1) / (C // 2)**0.5 + bias).softmax(-1)
    x = x + attn.proj((weights @ v).transpose(1, 2).flatten(2))
    return x + layer.ffn.layers[1](layer.ffn.layers[0](layer.ln2(x)))


def test_relative_position_bias_is_added_to_the_patch_logits_only():
    layer = block(4, rel_pos_span=(2, 3), num_extra_tokens=1)
    assert [k for k in layer.state_dict() if 'attn' in k][-1] == 'attn.rel_pos_bias.table'
    x = torch.randn(1, 1 + 6, 16, dtype=torch.float64)  # a cls token and a 2 x 3 grid
    with pytest.raises(ValueError, match='needs the patch grid'):
        layer(x)
    layer.attn.patch_grid = (2, 3)
    table = layer.attn.rel_pos_bias.table  # (heads, 3, 5): offsets dy in -1..1, dx in -2..2
    bias = torch.zeros(2, 7, 7, dtype=torch.float64)  # the cls row and column get none
    for i in range(6):
        for j in range(6):
            bias[:, 1 + i, 1 + j] = table[:, i // 3 - j // 3 + 1, i % 3 - j % 3 + 2]
    torch.testing.assert_close(layer(x), by_hand(layer, x, bias), rtol=1e-12, atol=1e-12)


def test_windows_of_a_padded_grid_by_hand():
    """2x2 windows on a 3x3 grid (padded to 4x4): a patch attends to the patches of its own window only."""
    layer = block(5, window_size=2, rel_pos_span=(2, 2))
    layer.attn.patch_grid = (3, 3)
    x = torch.randn(2, 9, 16, dtype=torch.float64)
    window = [(r // 2) * 2 + c // 2 for r in range(3) for c in range(3)]
    table = layer.attn.rel_pos_bias.table  # (heads, 3, 3)
    bias = torch.full((2, 9, 9), float('-inf'), dtype=torch.float64)
    for i in range(9):
        for j in range(9):
            if window[i] == window[j]:
                bias[:, i, j] = table[:, i // 3 - j // 3 + 1, i % 3 - j % 3 + 1]
    torch.testing.assert_close(layer(x), by_hand(layer, x, bias), rtol=1e-12, atol=1e-12)
    layer.attn.keep_weights = True
    layer(x)
    assert layer.attn.weights.shape == (2 * 4, 2, 4, 4)  # (B * windows, heads, S*S, S*S)


def test_window_attention_refuses_what_has_no_window():
    with pytest.raises(ValueError, match='windows take patch tokens only'):
        block(0, window_size=2, num_extra_tokens=1)
    layer = block(0, window_size=2)
    x = torch.randn(1, 4, 16, dtype=torch.float64)
    layer.attn.patch_grid = (2, 2)
    with pytest.raises(ValueError, match='self-attention over a patch grid'):
        layer(x, is_causal=True)
    with pytest.raises(ValueError, match='self-attention over a patch grid'):
        layer(x, context=x)
    layer.attn.patch_grid = (2, 3)
    with pytest.raises(ValueError, match=r'got 4 tokens for the patch grid \(2, 3\) with 0 extra tokens'):
        layer(x)


def test_only_blocks_with_windows_or_a_bias_get_the_dense_attention():
    model = dense(window_size=2, global_attn_indexes=[1], use_cls_token=False)
    kinds = [type(layer.attn) for layer in model.layers]
    assert kinds == [WindowRelPosAttention, SAIMAttention, WindowRelPosAttention, WindowRelPosAttention]
    windows = [layer.attn.window_size for layer in model.layers if isinstance(layer.attn, WindowRelPosAttention)]
    assert windows == [2, 2, 2]


def test_activation_checkpointing_gives_the_same_gradients_with_windows():
    kwargs = dict(window_size=3, global_attn_indexes=[1], use_cls_token=False, use_rel_pos_bias=True)
    models = [randomise(dense(with_cp=cp, drop_path_rate=0.0, **kwargs)) for cp in (False, True)]
    models[1].load_state_dict(models[0].state_dict())
    x = torch.randn(2, 3, 20, 28)
    grads = []
    for model in models:
        model.train()
        loss = sum((o**2).mean() for o in model(x))
        grads.append(torch.autograd.grad(loss, [p for p in model.parameters() if p.requires_grad]))
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert all(layer.with_cp for layer in models[1].layers)
