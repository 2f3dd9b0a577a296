import pytest
import torch
from mmpretrain.models import VisionTransformer
from mmpretrain.registry import MODELS

import saim_mm  # noqa: F401
from saim_mm.models.backbones import SAIMViT

ARCH = dict(embed_dims=32, num_layers=3, num_heads=2, feedforward_channels=64)


@pytest.mark.parametrize('out_type', ['cls_token', 'featmap', 'raw'])
def test_state_dict_loads_strictly_into_mmpretrain_vit_with_same_features(out_type):
    torch.manual_seed(0)
    saim = SAIMViT(arch=ARCH, img_size=16, patch_size=4, out_type=out_type, out_indices=[1, 2])
    saim.init_weights()
    # make every parameter non-trivial, so that a missed key would show in the features
    with torch.no_grad():
        for p in saim.parameters():
            p.add_(0.01 * torch.randn_like(p))
    vit = VisionTransformer(arch=ARCH, img_size=16, patch_size=4, out_type=out_type, out_indices=[1, 2])
    result = vit.load_state_dict(saim.state_dict(), strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    saim.eval(), vit.eval()
    x = torch.randn(2, 3, 16, 16)
    for a, b in zip(saim(x), vit(x)):
        assert torch.equal(a, b)


def test_pretraining_init_is_fixed_sincos_and_mae_style():
    torch.manual_seed(0)
    backbone = MODELS.build(dict(type='SAIMViT', arch=ARCH, img_size=(8, 16), patch_size=4))
    backbone.init_weights()
    pos = backbone.pos_embed[0]
    assert pos.shape == (1 + 2 * 4, 32)
    assert torch.all(pos[0] == 0)  # the cls slot is zero
    assert torch.allclose(pos[1:, :8], torch.sin(pos[1:, :8]).asin(), atol=1e-6)  # a sin table, not noise
    assert 0.01 < backbone.cls_token.std().item() < 0.04


def test_image_size_not_divisible_by_patch_is_refused():
    with pytest.raises(ValueError, match=r'img_size \(30, 30\) is not divisible by patch_size 4'):
        SAIMViT(arch=ARCH, img_size=30, patch_size=4)
    backbone = SAIMViT(arch=ARCH, img_size=16, patch_size=4)
    with pytest.raises(ValueError, match='Input image size 18x16 is not divisible by the patch size 4'):
        backbone(torch.zeros(1, 3, 18, 16))
    with pytest.raises(ValueError, match='needs images of img_size 16x16'):
        backbone(torch.zeros(1, 3, 20, 16), order=torch.arange(20).unsqueeze(0))


def test_generation_order_forward_shapes():
    backbone = SAIMViT(arch=ARCH, img_size=(8, 12), patch_size=4)
    backbone.init_weights()
    order = torch.stack([torch.randperm(6) for _ in range(2)])
    hidden, query_pos = backbone(torch.randn(2, 3, 8, 12), order=order)
    assert len(hidden) == 3 and all(h.shape == (2, 7, 32) for h in hidden)
    assert query_pos.shape == (2, 6, 32)
    assert torch.equal(query_pos[1, 0], backbone.pos_embed[0, 1 + order[1, 0]])
