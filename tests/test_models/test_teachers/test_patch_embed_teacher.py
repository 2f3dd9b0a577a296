"""PatchEmbedTeacher: the student's patch projection of every patch, written out, without gradient, following
the student's current weights, with no tensor of its own."""
import pytest
import torch
from mmpretrain.registry import MODELS

import saim_mm  # noqa: F401
from saim_mm.models.teachers import PatchEmbedTeacher

P = 4


def encoder() -> torch.nn.Module:
    torch.manual_seed(0)
    return MODELS.build(dict(type='SAIMViT', img_size=8, patch_size=P,
                             arch=dict(embed_dims=6, num_layers=1, num_heads=2, feedforward_channels=12))).double()


def projection_by_hand(images: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """W (C, 3, p, p) applied to every patch, raster order: (B, N, C)."""
    B, _, H, W = images.shape
    rows = [[weight.reshape(weight.shape[0], -1) @ images[b, :, r * P:(r + 1) * P, c * P:(c + 1) * P].reshape(-1)
             + bias for r in range(H // P) for c in range(W // P)] for b in range(B)]
    return torch.stack([torch.stack(row) for row in rows])


def test_features_are_the_patch_projection_of_the_current_student_without_gradient():
    student = encoder()
    teacher = PatchEmbedTeacher()
    teacher.attach(student)
    images = torch.randn(2, 3, 8, 12, dtype=torch.float64)
    proj = student.patch_embed.projection
    features = teacher(images)
    assert features.shape == (2, 6, 6) and not features.requires_grad and proj.weight.requires_grad
    assert torch.allclose(features, projection_by_hand(images, proj.weight, proj.bias), rtol=0, atol=1e-12)
    with torch.no_grad():
        proj.weight.mul_(-2.0)
    assert torch.allclose(teacher(images), projection_by_hand(images, proj.weight, proj.bias), rtol=0, atol=1e-12)
    assert teacher.out_channels == 6


def test_holds_no_tensor_and_stays_in_eval_mode():
    teacher = PatchEmbedTeacher()
    teacher.attach(encoder())
    assert teacher.state_dict() == {} and list(teacher.parameters()) == [] and list(teacher.buffers()) == []
    teacher.train()
    assert not teacher.training


def test_unattached_teacher_is_an_error():
    with pytest.raises(RuntimeError, match='PatchEmbedTeacher is not attached'):
        PatchEmbedTeacher()(torch.zeros(1, 3, 8, 8))
