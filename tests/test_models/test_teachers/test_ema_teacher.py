"""EMATeacher: the first update copies the student, later ones give (1 - m) * teacher + m * student for every
tensor (m constant outside a runner or with schedule='constant', CosineEMA's cosine with max_iters), the
update reaches the teacher after a move to another dtype, features are the plain ViT forward's, errors."""
import copy
import math
import uuid

import pytest
import torch
from mmengine.logging import MessageHub
from mmpretrain.registry import MODELS

import saim_mm  # noqa: F401
from saim_mm.models.teachers import EMATeacher


def encoder(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    vit = MODELS.build(dict(type='SAIMViT', img_size=16, patch_size=4,
                            arch=dict(embed_dims=16, num_layers=2, num_heads=2, feedforward_channels=32)))
    vit.init_weights()
    return vit.double()


def fresh_hub(**info) -> MessageHub:
    hub = MessageHub.get_instance(f'ema-teacher-{uuid.uuid4().hex}')  # the current instance from now on
    for key, value in info.items():
        hub.update_info(key, value)
    return hub


def perturb(module: torch.nn.Module, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=gen, dtype=p.dtype))


def snapshot(module: torch.nn.Module) -> dict:
    return {k: v.clone() for k, v in module.state_dict().items()}


def attached(student, **kwargs) -> EMATeacher:
    teacher = EMATeacher(**kwargs)
    teacher.attach(student)
    return teacher


def test_first_update_copies_the_student_and_later_ones_average_with_constant_momentum_outside_a_runner():
    fresh_hub()
    student = encoder()
    teacher = attached(student, momentum=0.3, end_momentum=0.0)
    perturb(student, 1)  # the copy made at attach time is no longer the student
    teacher.update()
    s1 = snapshot(student)
    assert teacher.ema.steps.item() == 1
    for name, value in teacher.encoder.state_dict().items():
        assert torch.equal(value, s1[name]), name
    for step in range(2, 4):
        before = snapshot(teacher.encoder)
        perturb(student, step)
        s = snapshot(student)
        teacher.update()
        for name, value in teacher.encoder.state_dict().items():
            assert torch.allclose(value, 0.7 * before[name] + 0.3 * s[name], rtol=0, atol=1e-14), name


@pytest.mark.parametrize('schedule', ['cosine', 'constant'])
def test_momentum_follows_the_cosine_of_max_iters_or_stays_constant(schedule):
    fresh_hub(max_iters=10)
    student = encoder()
    teacher = attached(student, momentum=0.4, end_momentum=0.1, schedule=schedule)
    teacher.update()
    for steps in (1, 2):  # the number of updates before this one, as CosineEMA counts
        before = snapshot(teacher.encoder)
        perturb(student, steps)
        s = snapshot(student)
        teacher.update()
        m = 0.1 - (0.1 - 0.4) * (math.cos(math.pi * steps / 10) + 1) / 2 if schedule == 'cosine' else 0.4
        name = 'layers.1.ffn.layers.0.0.weight'
        assert torch.allclose(teacher.encoder.state_dict()[name], (1 - m) * before[name] + m * s[name],
                              rtol=0, atol=1e-14)


def test_update_reaches_the_teacher_after_it_moved_to_another_dtype():
    fresh_hub()
    student = encoder().float()
    teacher = attached(student, momentum=0.5)
    perturb(student, 1)
    student.double(), teacher.double()
    teacher.update()
    for name, value in teacher.encoder.state_dict().items():
        assert value.dtype == student.state_dict()[name].dtype
        assert torch.equal(value, student.state_dict()[name]), name


def test_teacher_weights_are_persistent_buffers_and_it_stays_in_eval_mode():
    teacher = attached(encoder())
    assert list(teacher.parameters()) == []
    keys = set(teacher.state_dict())
    assert keys == {'ema.steps'} | {'ema.module.' + k for k in encoder().state_dict()}
    teacher.train()
    assert not any(m.training for m in teacher.modules())


@pytest.mark.parametrize('block', [None, 0])
def test_features_are_the_plain_vit_forward_patch_tokens(block):
    fresh_hub()
    student = encoder()
    teacher = attached(student, block=block)
    teacher.update()
    reference = copy.deepcopy(student)  # mmpretrain's VisionTransformer.forward, raw tokens
    reference.eval()
    reference.out_type, reference.out_indices = 'raw', [1 if block is None else block]
    images = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    expected = reference(images)[-1][:, 1:]
    features = teacher(images)
    assert features.shape == (2, 16, 16) and not features.requires_grad
    assert torch.allclose(features, expected, rtol=0, atol=1e-12)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match=r'teacher.momentum=0 must be a number in \(0, 1\)'):
        EMATeacher(momentum=0)
    with pytest.raises(ValueError, match=r'teacher.end_momentum=1.5 must be a number in \[0, 1\)'):
        EMATeacher(end_momentum=1.5)
    with pytest.raises(ValueError, match=r"teacher.schedule='linear' must be one of \('cosine', 'constant'\)"):
        EMATeacher(schedule='linear')
    with pytest.raises(ValueError, match=r'teacher.block=2 is not a block of a ViT of 2 blocks'):
        attached(encoder(), block=2)
    with pytest.raises(RuntimeError, match='EMATeacher is not attached'):
        EMATeacher().update()
