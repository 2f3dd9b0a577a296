import math

import pytest
import torch

import saim_mm  # noqa: F401
from saim_mm.models.heads import GaussianPixelLoss, gaussian_kernel


@pytest.mark.parametrize('k,sigma', [(3, 1.0), (9, 1.0), (9, 1.5), (5, 0.7)])
def test_kernel_sums_to_one_and_matches_closed_form(k, sigma):
    kernel = gaussian_kernel(k, sigma)
    assert kernel.shape == (k, k)
    assert abs(kernel.sum().item() - 1) < 1e-12
    c = (k - 1) / 2
    closed = torch.tensor([[math.exp(-((i - c)**2 + (j - c)**2) / (2 * sigma**2)) for j in range(k)]
                           for i in range(k)], dtype=torch.float64)
    closed /= closed.sum()
    assert torch.allclose(kernel, closed, rtol=0, atol=1e-15)


def test_smoothing_is_depthwise_zero_padded_convolution():
    head = GaussianPixelLoss(patch_size=2, kernel_size=3, sigma=1.0)
    img = torch.zeros(1, 3, 6, 6, dtype=torch.float64)
    img[0, 1, 2, 3] = 1.0  # an impulse in the green channel
    out = head.smooth(img)
    k = gaussian_kernel(3, 1.0)
    assert torch.allclose(out[0, 1, 1:4, 2:5], k)  # impulse response = kernel
    assert out[0, 0].abs().sum() == 0 and out[0, 2].abs().sum() == 0  # channels do not mix
    ones = head.smooth(torch.ones(1, 3, 6, 6, dtype=torch.float64))
    assert abs(ones[0, 0, 0, 0].item() - k[1:, 1:].sum().item()) < 1e-12  # zero padding at the corner
    assert abs(ones[0, 0, 3, 3].item() - 1.0) < 1e-12


def test_patchify_layout_is_p_p_c():
    head = GaussianPixelLoss(patch_size=2, kernel_size=None)
    img = torch.arange(2 * 3 * 4 * 6, dtype=torch.float64).reshape(2, 3, 4, 6)
    patches = head.patchify(img)
    assert patches.shape == (2, 6, 12)
    # patch (row 1, col 2) of image 1, value at (dy=1, dx=0, c=2)
    expected = img[1, 2, 1 * 2 + 1, 2 * 2 + 0]
    assert patches[1, 1 * 3 + 2, (1 * 2 + 0) * 3 + 2] == expected
    with pytest.raises(ValueError, match='not divisible by the patch size 2'):
        head.patchify(torch.zeros(1, 3, 5, 4))


def hand_target(img, p, norm_pix):
    """Per-patch targets computed element by element."""
    B, C, H, W = img.shape
    rows = []
    for b in range(B):
        for py in range(H // p):
            for px in range(W // p):
                vals = [img[b, c, py * p + dy, px * p + dx].item() for dy in range(p) for dx in range(p)
                        for c in range(C)]
                if norm_pix:
                    m = sum(vals) / len(vals)
                    var = sum((v - m)**2 for v in vals) / (len(vals) - 1)
                    vals = [(v - m) / math.sqrt(var + 1e-6) for v in vals]
                rows.append(vals)
    return torch.tensor(rows, dtype=torch.float64).reshape(B, -1, p * p * C)


@pytest.mark.parametrize('criterion', ['L1', 'L2'])
@pytest.mark.parametrize('norm_pix', [True, False])
def test_loss_matches_hand_computation(criterion, norm_pix):
    torch.manual_seed(0)
    head = GaussianPixelLoss(patch_size=2, kernel_size=None, norm_pix=norm_pix,
                             loss=dict(type='PixelReconstructionLoss', criterion=criterion))
    img = torch.randn(2, 3, 4, 4, dtype=torch.float64)
    order = torch.stack([torch.randperm(4) for _ in range(2)])
    target = hand_target(img, 2, norm_pix)
    pred = torch.randn(2, 4, 12, dtype=torch.float64)
    total, count = 0.0, 0
    for b in range(2):
        for t in range(4):
            for v in range(12):
                d = pred[b, t, v].item() - target[b, order[b, t], v].item()
                total += abs(d) if criterion == 'L1' else d * d
                count += 1
    loss = head.loss(pred, img, order)
    assert abs(loss.item() - total / count) < 1e-12


def test_target_is_smoothed_before_patchify():
    torch.manual_seed(1)
    head = GaussianPixelLoss(patch_size=2, kernel_size=3, sigma=1.0, norm_pix=False)
    img = torch.randn(1, 3, 4, 4, dtype=torch.float64)
    blurred = torch.nn.functional.conv2d(
        img, gaussian_kernel(3, 1.0).expand(3, 1, 3, 3), padding=1, groups=3)
    assert torch.allclose(head.construct_target(img), hand_target(blurred, 2, False))


@pytest.mark.parametrize('kernel_size', [0, -3, 4, 2.5, 'nine'])
def test_bad_kernel_size_is_refused(kernel_size):
    with pytest.raises(ValueError, match='kernel_size must be a positive odd int or None'):
        GaussianPixelLoss(kernel_size=kernel_size)


@pytest.mark.parametrize('sigma', [0, -1.0, float('nan')])
def test_bad_sigma_is_refused(sigma):
    with pytest.raises(ValueError, match='sigma must be a positive number'):
        GaussianPixelLoss(kernel_size=3, sigma=sigma)


@pytest.mark.parametrize('norm_pix', [True, False])
def test_target_normalisation_is_mmpretrains_and_the_loss_gathers_the_order(norm_pix):
    """Without smoothing the target is MAEPretrainHead's; ``loss`` compares row t with patch ``order[:, t]``."""
    from mmpretrain.models.heads import MAEPretrainHead
    head = GaussianPixelLoss(patch_size=4, kernel_size=None, norm_pix=norm_pix)
    mae = MAEPretrainHead(loss=dict(type='PixelReconstructionLoss', criterion='L2'), norm_pix=norm_pix,
                          patch_size=4)
    img = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    target = head.construct_target(img)
    assert torch.equal(target, mae.construct_target(img))
    order = torch.tensor([[5, 0, 9], [15, 3, 3]])
    pred = torch.randn(2, 3, 48, dtype=torch.float64)
    picked = torch.stack([target[b, order[b]] for b in range(2)])
    torch.testing.assert_close(head.loss(pred, img, order), ((pred - picked)**2).mean(), rtol=1e-12, atol=0)
    assert torch.equal(head.loss(target, img), torch.zeros((), dtype=torch.float64))  # raster without order
    with pytest.raises(ValueError, match=r'predictions of shape \(2, 3, 47\) for targets of shape \(2, 3, 48\)'):
        head.loss(pred[..., :47], img, order)
