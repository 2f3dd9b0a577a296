"""The generation-order fast path against the paper's dense-mask formulation (docs/method.md,
"Exact and fast: attention in generation order")."""
import pytest
import torch

from saim_mm.models.utils import check_order, gather_tokens
from saim_mm.testing import dense_mask_predictions, permutation_masks
from tests.conftest import build_tiny_saim


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm()).item()


def random_case(seed: int):
    """A random image size (square or not), batch and encoder depth."""
    g = torch.Generator().manual_seed(seed)
    hp, wp = (int(v) for v in torch.randint(2, 6, (2, ), generator=g))
    batch = int(torch.randint(1, 4, (1, ), generator=g))
    return (4 * hp, 4 * wp), batch, g


@pytest.mark.parametrize('order_mode', ['stochastic', 'raster'])
@pytest.mark.parametrize('dec_depth', [1, 2, 4])  # 1, M/2 and M for M = 4
@pytest.mark.parametrize('shared', [False, True])
@pytest.mark.parametrize('seed', [0, 1])
def test_fast_path_matches_dense_mask_oracle_float64(order_mode, dec_depth, shared, seed):
    img_size, batch, g = random_case(seed)
    torch.manual_seed(seed)
    model = build_tiny_saim(depth=4, dec_depth=dec_depth, shared=shared, img_size=img_size,
                            order=order_mode).double()
    x = torch.randn(batch, 3, *img_size, dtype=torch.float64, generator=g)
    order = model.sample_order(batch, x.device)
    if order_mode == 'raster':
        assert torch.equal(order, torch.arange(model.num_patches).expand(batch, -1))
    fast = model.predict_patches(x, order)  # generation order
    oracle = gather_tokens(dense_mask_predictions(model, x, order), order)
    assert rel_err(fast, oracle) <= 1e-10
    # the losses agree too
    loss_fast = model.loss(x, order=order)['loss']
    loss_oracle = model.head.loss(oracle, x, order)
    assert abs(loss_fast.item() - loss_oracle.item()) <= 1e-10 * abs(loss_oracle.item())


def test_fast_path_matches_oracle_float32():
    torch.manual_seed(3)
    model = build_tiny_saim(depth=4, dec_depth=4, img_size=(16, 20))
    x = torch.randn(2, 3, 16, 20)
    order = model.sample_order(2, x.device)
    fast = model.predict_patches(x, order)
    oracle = gather_tokens(dense_mask_predictions(model, x, order), order)
    assert rel_err(fast, oracle) <= 1e-5


def test_depth0_raster_matches_oracle():
    torch.manual_seed(4)
    model = build_tiny_saim(depth=4, dec_depth=0, order='raster').double()
    x = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    order = model.sample_order(2, x.device)
    fast = model.predict_patches(x, order)
    oracle = gather_tokens(dense_mask_predictions(model, x, order), order)
    assert rel_err(fast, oracle) <= 1e-10


@pytest.mark.parametrize('dec_depth', [0, 4])
def test_prediction_depends_only_on_preceding_patches(dec_depth):
    torch.manual_seed(5)
    mode = 'raster' if dec_depth == 0 else 'stochastic'
    model = build_tiny_saim(depth=4, dec_depth=dec_depth, img_size=(12, 16), order=mode).double()
    x = torch.randn(1, 3, 12, 16, dtype=torch.float64, requires_grad=True)
    order = model.sample_order(1, x.device)
    pred = model.predict_patches(x, order)
    N = model.num_patches
    for t in range(N):
        (grad, ) = torch.autograd.grad(pred[0, t].sum(), x, retain_graph=True)
        per_patch = model.head.patchify(grad.abs()).sum(-1)[0]  # (N,) raster
        later = order[0, t:]
        earlier = order[0, :t]
        assert torch.all(per_patch[later] == 0), f'step {t} sees patches at or after itself'
        assert torch.all(per_patch[earlier] > 0), f'step {t} does not see all earlier patches'


def test_permutation_masks_follow_equation_3():
    order = torch.tensor([[2, 0, 1]])
    content, query = permutation_masks(order)
    allowed_c = (content[0, 0] == 0)
    allowed_q = (query[0, 0] == 0)
    # token 0 = cls, token 1 + i = patch i; ranks: patch 2 -> 0, patch 0 -> 1, patch 1 -> 2
    assert allowed_c.tolist() == [[True, False, False, False],
                                  [True, True, False, True],
                                  [True, True, True, True],
                                  [True, False, False, True]]
    assert allowed_q.tolist() == [[True, False, False, False],
                                  [True, False, False, True],
                                  [True, True, False, True],
                                  [True, False, False, False]]


def test_check_order_refuses_what_is_not_a_batch_of_permutations():
    check_order(torch.stack([torch.randperm(10) for _ in range(3)]), 3, 10)
    with pytest.raises(ValueError, match='permutation'):
        check_order(torch.tensor([[0, 0, 1]]), 1, 3)
    with pytest.raises(ValueError, match=r'shape \(B, N\)'):
        check_order(torch.tensor([[0, 1]]), 1, 3)
