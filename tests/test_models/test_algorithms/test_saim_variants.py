"""Beyond the paper, exact: partial prediction, a narrow decoder, other orders and a HOG target, each against
the dense-mask oracle (float64) or the full model."""
import pytest
import torch
from mmpretrain.registry import MODELS

import saim_mm  # noqa: F401
from saim_mm.models.orders import named_orders
from saim_mm.models.utils import gather_tokens, segment_masks
from saim_mm.testing import dense_mask_predictions
from tests.conftest import tiny_saim_cfg

IMG = (12, 16)  # 3 x 4 patches of 4 x 4
# every registered order; segments of 1 x 4 patches (whole rows of the 3 x 4 grid, in random order)
ORDERS = {name: name for name in named_orders()}
ORDERS['random_segments'] = dict(type='RandomSegmentOrder', segment=(1, 4))


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm()).item()


def build(seed: int = 0, order='stochastic', **neck) -> torch.nn.Module:
    cfg = tiny_saim_cfg(depth=4, dec_depth=neck.pop('dec_depth', 4), img_size=IMG, order=order)
    cfg['neck'].update(neck)
    torch.manual_seed(seed)
    model = MODELS.build(cfg)
    model.init_weights()
    with torch.no_grad():  # non-trivial biases and norms
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model.double().eval()


def inputs(batch: int = 2, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, 3, *IMG, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize('partial', [dict(num_predict=5), dict(predict_ratio=1 / 2), dict(num_predict=1)])
@pytest.mark.parametrize('dec_depth', [0, 2, 4])
def test_partial_prediction_equals_the_full_model_at_the_predicted_steps(partial, dec_depth):
    order = 'raster' if dec_depth == 0 else 'stochastic'
    full = build(1, order=order, dec_depth=dec_depth)
    part = build(1, order=order, dec_depth=dec_depth, **partial)
    part.load_state_dict(full.state_dict())
    x = inputs()
    z = full.sample_order(2, x.device)
    K = part.num_predictions
    assert K == partial.get('num_predict', round(12 * partial.get('predict_ratio', 1)))
    pred = part.predict_patches(x, z)
    assert pred.shape == (2, K, 48)
    assert rel_err(pred, full.predict_patches(x, z)[:, 12 - K:]) <= 1e-10
    # the loss is over the predicted patches only
    expected = part.head.loss(full.predict_patches(x, z)[:, 12 - K:], x, z[:, 12 - K:])
    assert abs(part.loss(x, order=z)['loss'].item() - expected.item()) <= 1e-10 * expected.item()


@pytest.mark.parametrize('neck', [
    dict(embed_dims=24, num_heads=3, feedforward_channels=48),  # narrow, depth 4 of 4
    dict(embed_dims=48, num_heads=4, feedforward_channels=96, dec_depth=2),  # wider than the encoder
    dict(embed_dims=16, num_heads=2, feedforward_channels=32, dec_depth=3, context_layers=[1, 3, 4]),
])
def test_narrow_decoder_equals_the_oracle_with_the_same_projection(neck):
    model = build(2, **neck)
    assert model.neck.narrow and len(model.neck.context_embeds) == model.neck.num_layers
    x = inputs()
    z = model.sample_order(2, x.device)
    fast = model.predict_patches(x, z)
    oracle = gather_tokens(dense_mask_predictions(model, x, z), z)
    assert rel_err(fast, oracle) <= 1e-10


@pytest.mark.parametrize('depth', [
    dict(),  # as deep as the encoder
    dict(dec_depth=2, context_layers=[2, 4]),  # fewer blocks reading every other encoder block (narrow_512x4)
])
def test_narrow_partial_decoder_equals_the_oracle(depth):
    model = build(3, embed_dims=24, num_heads=3, feedforward_channels=48, predict_ratio=1 / 6, **depth)
    assert model.neck.context_indices(4) == [i - 1 for i in depth.get('context_layers', [1, 2, 3, 4])]
    x = inputs()
    z = model.sample_order(2, x.device)
    K = model.num_predictions
    oracle = gather_tokens(dense_mask_predictions(model, x, z), z)[:, 12 - K:]
    assert rel_err(model.predict_patches(x, z), oracle) <= 1e-10


@pytest.mark.parametrize('order', sorted(ORDERS))
def test_every_order_equals_the_oracle(order):
    model = build(4, order=ORDERS[order])
    x = inputs()
    z = model.sample_order(2, x.device, images=x)
    oracle = gather_tokens(dense_mask_predictions(model, x, z), z)
    assert rel_err(model.predict_patches(x, z), oracle) <= 1e-10


@pytest.mark.parametrize('order', sorted(ORDERS))
def test_every_order_predicts_a_patch_only_from_earlier_steps(order):
    """Zero gradient w.r.t. the patches at or after step t (for segments: its own and later segments),
    non-zero w.r.t. every earlier one."""
    model = build(5, order=ORDERS[order])
    x = inputs(1).requires_grad_(True)
    z = model.sample_order(1, x.device, images=x)
    pred = model.predict_patches(x, z)
    G = model.order_generator.segment_size
    for t in range(12):
        (grad, ) = torch.autograd.grad(pred[0, t].sum(), x, retain_graph=True)
        per_patch = model.head.patchify(grad.abs()).sum(-1)[0]  # (N,), raster
        first_unseen = (t // G) * G  # the first step of t's segment
        assert torch.all(per_patch[z[0, first_unseen:]] == 0), f'{order}: step {t} sees later patches'
        assert torch.all(per_patch[z[0, :first_unseen]] > 0), f'{order}: step {t} misses earlier patches'


def test_segment_steps_of_one_tile_see_each_other_in_the_content_stream():
    model = build(6, order=ORDERS['random_segments'])
    x = inputs(1).requires_grad_(True)
    z = model.sample_order(1, x.device)
    assert model.order_generator.segment_size == 4
    hidden, _ = model.backbone(x, order=z, attn_mask=segment_masks(12, 4)[0])
    # the token of step 0 (index 1 after cls) depends on the other 3 patches of its segment, no others
    (grad, ) = torch.autograd.grad(hidden[-1][0, 1].sum(), x)
    per_patch = model.head.patchify(grad.abs()).sum(-1)[0]
    assert torch.all(per_patch[z[0, :4]] > 0) and torch.all(per_patch[z[0, 4:]] == 0)


def test_hog_target_sets_the_decoder_width_and_matches_mmpretrains_hog():
    from mmpretrain.models.selfsup.maskfeat import HOGGenerator
    cfg = tiny_saim_cfg(depth=2, dec_depth=2, img_size=32, patch=8)
    cfg['head'] = dict(type='HOGLoss', patch_size=8, pool=4, gaussian_window=16)
    del cfg['neck']['patch_size']
    model = MODELS.build(cfg)
    D = (8 // 4)**2 * 3 * 9
    assert model.head.target_channels == D and model.neck.out_channels == D
    assert model.neck.predictor.fc2.out_features == D
    x = torch.randn(2, 3, 32, 32)
    loss = model.loss(x)['loss']
    loss.backward()
    assert torch.isfinite(loss) and model.neck.predictor.fc2.weight.grad.abs().sum() > 0
    # where mmpretrain's own grouping works (a 14 x 14 patch grid), the per-patch targets are the same
    img = torch.randn(1, 3, 224, 224)
    theirs = HOGGenerator(nbins=9, pool=8, gaussian_window=16)(img)
    ours = MODELS.build(dict(type='HOGLoss', patch_size=16)).construct_target(img)
    assert ours.shape == theirs.shape == (1, 196, 108)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=0)
