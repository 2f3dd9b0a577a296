"""SAIM with AIM's prefix (PrefixCausalAttention in the encoder, ``prefix_range``): the fast path against
the dense-mask oracle (float64), which patches each prediction depends on, which targets the loss reads,
the loss as a written-out mean, the plain ViT forward, and the errors."""
import re

import pytest
import torch
from mmpretrain.registry import MODELS

import saim_mm  # noqa: F401
from saim_mm.models.utils import gather_tokens
from saim_mm.testing import dense_mask_predictions
from tests.conftest import tiny_saim_cfg

IMG = (12, 16)  # 3 x 4 patches of 4 x 4
N = 12
PREFIX = torch.tensor([1, 3, N - 1])  # several prefix lengths in one batch
PREFIX_ATTN = dict(attn_cfg=dict(type='PrefixCausalAttention'))


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm()).item()


def config(dec_depth: int = 2, order='stochastic', prefix: bool = True, **saim) -> dict:
    cfg = tiny_saim_cfg(depth=4, dec_depth=dec_depth, img_size=IMG, order=order)
    if prefix:
        cfg['backbone']['layer_cfgs'] = PREFIX_ATTN
    neck = saim.pop('neck', {})
    cfg['neck'].update(neck)
    cfg.update(saim)
    return cfg


def build(seed: int = 0, **kwargs) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = MODELS.build(config(**kwargs))
    model.init_weights()
    with torch.no_grad():  # non-trivial biases and norms
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model.double().eval()


def inputs(batch: int = 3, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, 3, *IMG, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


CASES = {  # name: (build arguments)
    'query_stream_depth2': dict(dec_depth=2),
    'query_stream_depth4': dict(dec_depth=4),
    'query_stream_shared_weights': dict(dec_depth=2, neck=dict(share_encoder_weights=True)),
    'no_query_stream_raster': dict(dec_depth=0, order='raster'),
}


@pytest.mark.parametrize('case', CASES)
def test_fast_path_equals_the_dense_mask_oracle_float64(case):
    model = build(1, **CASES[case])
    x = inputs()
    z = model.sample_order(3, x.device)
    fast = model.predict_patches(x, z, PREFIX)
    oracle = gather_tokens(dense_mask_predictions(model, x, z, PREFIX), z)
    assert rel_err(fast, oracle) <= 1e-10
    # the prefix changes the predictions after it (P = N - 1 leaves one step that does not see it)
    causal = model.predict_patches(x, z)
    assert rel_err(fast[1:], causal[1:]) > 1e-3


def test_partial_prediction_equals_the_oracle_at_the_predicted_steps():
    model = build(2, dec_depth=2, neck=dict(num_predict=5))
    x = inputs()
    z = model.sample_order(3, x.device)
    oracle = gather_tokens(dense_mask_predictions(model, x, z, PREFIX), z)[:, N - 5:]
    assert rel_err(model.predict_patches(x, z, PREFIX), oracle) <= 1e-10


def patch_grad_norms(model, x: torch.Tensor, z: torch.Tensor, prefix: torch.Tensor, step: int) -> torch.Tensor:
    """(B, N): the gradient norm of prediction ``step`` with respect to the pixels of patch ``z_s`` (column s)."""
    x = x.clone().requires_grad_()
    pred = model.predict_patches(x, z, prefix)
    w = torch.randn(pred.shape[-1], dtype=pred.dtype, generator=torch.Generator().manual_seed(step))
    grad, = torch.autograd.grad((pred[:, step] @ w).sum(), x)  # samples are independent
    p = model.backbone.patch_size
    per_patch = grad.unfold(2, p, p).unfold(3, p, p).pow(2).sum((1, 4, 5)).flatten(1)  # (B, N) raster
    return torch.gather(per_patch, 1, z)


@pytest.mark.parametrize('case', ['query_stream_depth2', 'no_query_stream_raster'])
def test_a_step_after_the_prefix_depends_on_exactly_the_earlier_patches(case):
    model = build(3, **CASES[case])
    x = inputs()
    z = model.sample_order(3, x.device)
    for t in range(N):
        norms = patch_grad_norms(model, x, z, PREFIX, t)
        for b, P in enumerate(PREFIX.tolist()):
            if t >= P:
                assert (norms[b, t:] == 0).all(), (case, b, t)
                assert (norms[b, :t] > 1e-12).all(), (case, b, t)


def test_a_step_inside_the_prefix_reads_the_whole_prefix_through_the_content_stream():
    model = build(3, dec_depth=2)
    x = inputs()
    z = model.sample_order(3, x.device)
    P = 3  # sample 1
    for t in range(1, P):  # the query of z_t reads the content outputs of z_0..z_{t-1}, which see z_0..z_{P-1}
        norms = patch_grad_norms(model, x, z, PREFIX, t)
        assert (norms[1, :P] > 1e-12).all() and (norms[1, P:] == 0).all()


def with_target_change(model, rows: torch.Tensor):
    """Replace the head's targets of the raster patches where ``rows`` (B, N) is True by other values."""
    construct = model.head.construct_target

    def changed(images):
        target = construct(images)
        return torch.where(rows[..., None], target + 1.0, target)

    model.head.construct_target = changed


def test_the_loss_does_not_read_the_targets_of_prefix_patches():
    x = inputs()
    model = build(4, dec_depth=2)
    z = model.sample_order(3, x.device)
    rank = torch.argsort(z, dim=1)  # step of each raster patch
    base = model.loss(x, order=z, prefix_len=PREFIX)['loss']
    with_target_change(model, rank < PREFIX[:, None])
    assert torch.equal(model.loss(x, order=z, prefix_len=PREFIX)['loss'], base)
    model = build(4, dec_depth=2)
    one_later_step = (rank == PREFIX[:, None]) & (torch.arange(3) == 0)[:, None]
    with_target_change(model, one_later_step)
    assert model.loss(x, order=z, prefix_len=PREFIX)['loss'] != base


@pytest.mark.parametrize('neck', [dict(), dict(num_predict=5)])
def test_loss_is_the_mean_over_the_steps_after_the_prefix_of_the_per_patch_losses(neck):
    model = build(5, dec_depth=2, neck=neck)
    x = inputs()
    z = model.sample_order(3, x.device)
    K = model.num_predictions
    pred = gather_tokens(dense_mask_predictions(model, x, z, PREFIX), z)[:, N - K:]  # step N - K + i
    target = gather_tokens(model.head.construct_target(x), z)[:, N - K:]
    per_patch = (pred - target).pow(2).mean(-1)  # L2: the mean squared error of each patch
    total, count = 0., 0
    for b, P in enumerate(PREFIX.tolist()):
        for i in range(K):
            if N - K + i >= P:
                total, count = total + per_patch[b, i], count + 1
    expected = total / count
    loss = model.loss(x, order=z, prefix_len=PREFIX)['loss']
    assert abs(loss.item() - expected.item()) <= 1e-10 * expected.item()


def test_loss_draws_the_prefix_with_sample_prefix_and_trains():
    model = build(6, dec_depth=2).train()
    x = inputs()
    z = model.sample_order(3, x.device)
    torch.manual_seed(7)
    drawn = model.loss(x, order=z)['loss']
    torch.manual_seed(7)
    explicit = model.loss(x, order=z, prefix_len=model.sample_prefix(3, x.device))['loss']
    assert torch.equal(drawn, explicit)
    drawn.backward()
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    missing = [n for n, p in trainable.items() if p.grad is None or p.grad.abs().sum() == 0]
    assert not missing, missing


@pytest.mark.parametrize('prefix_range,expected', [(None, (1, N - 1)), ((2, 4), (2, 4)), ([5, None], (5, N - 1))])
def test_sample_prefix_is_uniform_over_the_inclusive_range(prefix_range, expected):
    model = MODELS.build(config(prefix_range=prefix_range))
    assert model.prefix_range == expected
    torch.manual_seed(0)
    draws = model.sample_prefix(6000, 'cpu')
    assert draws.shape == (6000, ) and draws.dtype == torch.long
    lo, hi = expected
    counts = torch.bincount(draws, minlength=hi + 1)
    assert counts[:lo].sum() == 0 and counts[hi + 1:].sum() == 0
    assert (counts[lo:] - 6000 / (hi - lo + 1)).abs().max() < 0.25 * 6000 / (hi - lo + 1)


def test_plain_vit_forward_is_full_attention_with_saim_attentions_keys():
    prefix, plain = build(8), build(8, prefix=False)
    assert prefix.state_dict().keys() == plain.state_dict().keys()
    plain.load_state_dict(prefix.state_dict())  # strict
    x = inputs()
    assert torch.equal(prefix.extract_feat(x)[0], plain.extract_feat(x)[0])
    # and a model without the prefix is unchanged by the class: the content stream is the causal one
    z = plain.sample_order(3, x.device)
    assert torch.equal(prefix.predict_patches(x, z), plain.predict_patches(x, z))


def test_a_model_without_the_prefix_attention_refuses_prefix_range_and_prefix_len():
    with pytest.raises(ValueError, match=r"prefix_range=\(1, 3\) needs prefix-causal encoder blocks \(backbone"
                                         r"\.layer_cfgs\.attn_cfg\.type='PrefixCausalAttention'\), got "
                                         r"\['SAIMAttention'\]"):
        MODELS.build(config(prefix=False, prefix_range=(1, 3)))
    model = build(prefix=False)
    x = inputs()
    with pytest.raises(ValueError, match='prefix_len needs prefix-causal encoder blocks'):
        model.loss(x, prefix_len=PREFIX)
    with pytest.raises(ValueError, match="prefix_len needs backbone.layer_cfgs.attn_cfg.type='PrefixCausalAttention'"
                                         r" in every block, got \['SAIMAttention'\]"):
        model.backbone(x, order=model.sample_order(3, x.device), prefix_len=PREFIX)
    with pytest.raises(ValueError, match='sample_prefix needs prefix-causal encoder blocks'):
        model.sample_prefix(3, 'cpu')


@pytest.mark.parametrize('prefix_range', [(3, 2), (0, 5), (1, N), (N, None)])
def test_a_prefix_range_outside_one_to_n_minus_one_is_refused(prefix_range):
    message = (f'prefix_range={tuple(prefix_range)!r} must satisfy 1 <= lo <= hi <= N - 1 = {N - 1} (the allowed '
               f'range is [1, {N - 1}] for {N} patches)')
    with pytest.raises(ValueError, match=re.escape(message)):
        MODELS.build(config(prefix_range=prefix_range))


@pytest.mark.parametrize('prefix_range', [(1.5, 3), 3, (1, 2, 3)])
def test_a_prefix_range_that_is_not_two_ints_is_refused(prefix_range):
    with pytest.raises(ValueError, match=r'prefix_range must be \(lo, hi\), two ints \(hi may be None = 11\)'):
        MODELS.build(config(prefix_range=prefix_range))


def test_a_prefix_with_segment_orders_is_refused():
    order = dict(type='RandomSegmentOrder', segment=(1, 4))
    with pytest.raises(ValueError, match="PrefixCausalAttention' \\(a prefix\\) does not combine with an order of "
                                         'segments: RandomSegmentOrder predicts segment_size=4 steps together'):
        MODELS.build(config(order=order))


def test_prefix_attention_in_some_blocks_only_is_refused():
    cfg = config()
    cfg['backbone']['layer_cfgs'] = [PREFIX_ATTN, {}, PREFIX_ATTN, {}]
    with pytest.raises(ValueError, match="PrefixCausalAttention' must be given to every encoder block or to none, "
                                         r"got \['PrefixCausalAttention', 'SAIMAttention'\]"):
        MODELS.build(cfg)


@pytest.mark.parametrize('prefix_len,message', [
    (torch.tensor([1, 2]), r'prefix_len must be an integer tensor of shape \(B,\) = \(3,\), got torch.int64 \(2,\)'),
    (torch.tensor([1., 2., 3.]), r'prefix_len must be an integer tensor of shape \(B,\) = \(3,\), got torch.float32'),
    (torch.tensor([0, 2, 3]), r'prefix_len values must lie in prefix_range \[1, 11\], got \[0, 2, 3\]'),
    (torch.tensor([1, 2, N]), r'prefix_len values must lie in prefix_range \[1, 11\], got \[1, 2, 12\]'),
])
def test_a_bad_prefix_len_is_refused(prefix_len, message):
    model = build()
    with pytest.raises(ValueError, match=message):
        model.loss(inputs(), prefix_len=prefix_len)


def test_prefix_len_of_the_backbone_needs_an_order():
    model = build()
    with pytest.raises(ValueError, match='SAIMViT prefix_len applies to the content stream: give an order too'):
        model.backbone(inputs(), prefix_len=PREFIX)
