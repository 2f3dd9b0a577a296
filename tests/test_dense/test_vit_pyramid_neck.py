import pytest
import torch

import saim_mm  # noqa: F401
from saim_mm.dense import ViTPyramidNeck


@pytest.mark.parametrize('hw', [(8, 8), (6, 10), (5, 7)])
def test_scales_x4_x2_x1_half(hw):
    neck = ViTPyramidNeck(in_channels=16)
    neck.init_weights()
    H, W = hw
    outs = neck([torch.randn(2, 16, H, W) for _ in range(4)])
    assert [tuple(o.shape) for o in outs] == [(2, 16, 4 * H, 4 * W), (2, 16, 2 * H, 2 * W), (2, 16, H, W),
                                              (2, 16, H // 2, W // 2)]


def test_identity_and_max_pool_levels():
    neck = ViTPyramidNeck(in_channels=4, scales=(1, 0.5))
    x = torch.randn(1, 4, 4, 6)
    same, pooled = neck([x, x])
    assert torch.equal(same, x)
    assert torch.equal(pooled, x.view(1, 4, 2, 2, 3, 2).amax(dim=(3, 5)))


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match=r'scales must be a non-empty list of \(4, 2, 1, 0.5\), got \[3\]'):
        ViTPyramidNeck(in_channels=8, scales=(3, ))
    neck = ViTPyramidNeck(in_channels=8)
    with pytest.raises(ValueError, match='got 3 feature maps for 4 scales'):
        neck([torch.randn(1, 8, 4, 4)] * 3)
    with pytest.raises(ValueError, match=r'input 0 must be \(B, 8, H, W\), got \(1, 16, 8\)'):
        neck([torch.randn(1, 16, 8)] * 4)
