"""FeatureTargetHead: the two losses against their written-out formulas, the width checks, and a full SAIM
``train_step`` through mmengine's optimizer wrapper with each teacher (no gradient and no optimizer slot for
any teacher tensor, the teacher frozen or exactly its EMA, eval mode, state dict keys)."""
import math
import uuid

import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.optim import build_optim_wrapper
from mmpretrain.registry import MODELS

import saim_mm  # noqa: F401
from saim_mm.models.heads import FeatureTargetHead
from tests.conftest import tiny_saim_cfg

WIDTH, TEACHER_WIDTH, PATCH, IMG = 16, 24, 4, 16


def patch_embed_head(loss: str = 'normalized_l2') -> FeatureTargetHead:
    return FeatureTargetHead(teacher=dict(type='PatchEmbedTeacher'), patch_size=PATCH, loss=loss, feature_dims=8)


def unit(v):
    n = math.sqrt(sum(x * x for x in v))
    return [x / n for x in v]


def test_normalized_l2_is_the_squared_distance_of_the_unit_vectors_summed_over_channels():
    torch.manual_seed(0)
    pred, target = torch.randn(2, 3, 5, dtype=torch.float64), torch.randn(2, 3, 5, dtype=torch.float64)
    per_patch = [sum((p - t)**2 for p, t in zip(unit(pred[b, k].tolist()), unit(target[b, k].tolist())))
                 for b in range(2) for k in range(3)]
    loss = patch_embed_head('normalized_l2').criterion(pred, target)
    assert abs(loss.item() - sum(per_patch) / 6) < 1e-14


def test_cosine_is_two_minus_twice_the_cosine_similarity():
    torch.manual_seed(1)
    pred, target = torch.randn(2, 3, 5, dtype=torch.float64), torch.randn(2, 3, 5, dtype=torch.float64)
    per_patch = [2 - 2 * sum(p * t for p, t in zip(unit(pred[b, k].tolist()), unit(target[b, k].tolist())))
                 for b in range(2) for k in range(3)]
    loss = patch_embed_head('cosine').criterion(pred, target)
    assert abs(loss.item() - sum(per_patch) / 6) < 1e-14


@pytest.mark.parametrize('loss', ['normalized_l2', 'cosine'])
def test_losses_ignore_the_scale_of_each_vector_and_vanish_on_parallel_ones(loss):
    torch.manual_seed(2)
    pred, target = torch.randn(1, 4, 6, dtype=torch.float64), torch.randn(1, 4, 6, dtype=torch.float64)
    head = patch_embed_head(loss)
    scales = torch.tensor([0.5, 3.0, 7.0, 0.1], dtype=torch.float64)[None, :, None]
    assert torch.allclose(head.criterion(pred * scales, target / scales), head.criterion(pred, target), atol=1e-14)
    assert head.criterion(target * scales, target).abs().item() < 1e-14
    assert abs(head.criterion(-target, target).item() - 4) < 1e-14


def test_unknown_loss_name_is_refused():
    with pytest.raises(ValueError, match=r"head.loss='l1'.*\('normalized_l2', 'cosine'\)"):
        patch_embed_head('l1')


def tiny_vit_cfg(width: int = TEACHER_WIDTH) -> dict:
    return dict(type='mmpretrain.VisionTransformer', img_size=IMG, patch_size=PATCH,
                arch=dict(embed_dims=width, num_layers=2, num_heads=2, feedforward_channels=2 * width))


@pytest.fixture(scope='module')
def vit_checkpoint(tmp_path_factory):
    torch.manual_seed(3)
    path = str(tmp_path_factory.mktemp('teacher') / 'vit.pth')
    torch.save(MODELS.build(tiny_vit_cfg()).state_dict(), path)
    return path


def teacher_cfg(kind: str, checkpoint: str) -> dict:
    return dict(ema=dict(type='EMATeacher', momentum=0.25),
                pretrained=dict(type='PretrainedTeacher', model=tiny_vit_cfg(), checkpoint=checkpoint),
                patch_embed=dict(type='PatchEmbedTeacher'))[kind]


def tiny_saim(teacher: dict, **head) -> torch.nn.Module:
    cfg = tiny_saim_cfg(depth=2, dec_depth=1, embed_dims=WIDTH, patch=PATCH, img_size=IMG)
    cfg['head'] = dict(type='FeatureTargetHead', patch_size=PATCH, teacher=teacher, **head)
    cfg['data_preprocessor'] = dict(type='mmengine.BaseDataPreprocessor')
    model = MODELS.build(cfg)
    model.init_weights()
    return model


def test_feature_dims_other_than_the_teacher_width_is_refused(vit_checkpoint):
    with pytest.raises(ValueError, match=r'head.feature_dims=16 .*PretrainedTeacher, 24: a teacher width the head '
                                         'cannot take'):
        FeatureTargetHead(teacher=teacher_cfg('pretrained', vit_checkpoint), patch_size=PATCH, feature_dims=16)
    with pytest.raises(ValueError, match=r'head.feature_dims=8 .*EMATeacher, 16: a teacher width the head cannot'):
        tiny_saim(teacher_cfg('ema', vit_checkpoint), feature_dims=8)


def test_encoder_bound_teacher_takes_its_width_from_the_encoder_inside_saim():
    assert tiny_saim(dict(type='PatchEmbedTeacher')).neck.out_channels == WIDTH
    assert tiny_saim(dict(type='EMATeacher')).neck.out_channels == WIDTH


def test_encoder_bound_head_on_its_own_asks_for_feature_dims_before_it_is_attached():
    head = FeatureTargetHead(teacher=dict(type='PatchEmbedTeacher'), patch_size=PATCH)
    with pytest.raises(ValueError, match='head.feature_dims is needed with head.teacher=PatchEmbedTeacher'):
        head.target_channels


def test_the_decoder_predicts_the_teacher_width(vit_checkpoint):
    assert tiny_saim(teacher_cfg('pretrained', vit_checkpoint)).neck.out_channels == TEACHER_WIDTH
    assert tiny_saim(teacher_cfg('ema', vit_checkpoint), feature_dims=WIDTH).neck.out_channels == WIDTH


def test_ema_teacher_is_the_initialised_encoder_after_the_model_is_initialised(vit_checkpoint):
    model = tiny_saim(teacher_cfg('ema', vit_checkpoint), feature_dims=WIDTH)  # built, then init_weights()
    teacher = model.head.teacher.encoder.state_dict()
    for name, value in model.backbone.state_dict().items():
        assert torch.equal(teacher[name], value), name
    assert model.head.teacher.ema.steps.item() == 0


def tensors(module: torch.nn.Module) -> dict:
    """Every parameter and buffer of ``module`` (state dict or not), cloned."""
    return {n: t.detach().clone() for n, t in [*module.named_parameters(), *module.named_buffers()]}


@pytest.mark.parametrize('kind', ['ema', 'pretrained', 'patch_embed'])
def test_train_step_leaves_the_teacher_frozen_and_out_of_the_optimizer(kind, vit_checkpoint):
    MessageHub.get_instance(f'feature-head-{uuid.uuid4().hex}')  # a fresh hub: no max_iters, constant momentum
    torch.manual_seed(4)
    model = tiny_saim(teacher_cfg(kind, vit_checkpoint), feature_dims=None if kind == 'pretrained' else WIDTH)
    model = model.double()
    optim = build_optim_wrapper(model, dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-2)))
    teacher = model.head.teacher
    teacher_tensors = [*teacher.parameters(), *teacher.buffers()]
    optimized = [p for group in optim.optimizer.param_groups for p in group['params']]
    assert optimized and not any(p is t for p in optimized for t in teacher_tensors)
    assert not any('teacher' in name for name, _ in model.named_parameters())

    model.train()
    assert not any(m.training for m in teacher.modules()) and model.backbone.training
    images = torch.randn(2, 3, IMG, IMG, dtype=torch.float64)
    history = []  # (student encoder, teacher) before each step
    for _ in range(2):
        history.append((tensors(model.backbone), tensors(teacher)))
        model.train_step(dict(inputs=images, data_samples=None), optim)
    assert all(t.grad is None and not t.requires_grad for t in teacher.buffers())
    after = tensors(teacher)

    state = model.state_dict()
    backbone_keys = {'backbone.' + k for k in model.backbone.state_dict()}
    assert {k for k in state if k.startswith('backbone.')} == backbone_keys  # no teacher weights in an export
    teacher_keys = sorted(k[len('head.teacher.'):] for k in state if k.startswith('head.teacher.'))
    assert teacher_keys == sorted(teacher.state_dict())
    if kind == 'pretrained':  # read from its file again on demand: frozen, outside the state dict
        assert teacher_keys == [] and len(after) == len(teacher_tensors) > 0
        for name, value in after.items():
            assert torch.equal(value, history[0][1][name]), name
    elif kind == 'patch_embed':  # no tensor of its own
        assert teacher_keys == [] and teacher_tensors == []
    else:
        student_keys = sorted(f'ema.module.{k}' for k in model.backbone.state_dict())
        assert teacher_keys == sorted(student_keys + ['ema.steps']) and after['ema.steps'].item() == 2
        m = 0.25
        first, second = history[0][0], history[1][0]  # the student before step 1 and step 2
        for name in model.backbone.state_dict():
            expected = (1 - m) * first[name] + m * second[name]  # step 1 copied the student, step 2 averaged
            assert torch.allclose(after['ema.module.' + name], expected, rtol=0, atol=1e-14), name
        assert not torch.equal(first['layers.0.attn.qkv.weight'], second['layers.0.attn.qkv.weight'])


def test_the_teacher_steps_before_the_order_is_drawn_once_per_training_loss():
    model = tiny_saim(dict(type='EMATeacher')).train()
    calls = []
    update, sample_order = model.head.update, model.sample_order
    model.head.update = lambda: (calls.append('update'), update())[1]
    model.sample_order = lambda *args, **kwargs: (calls.append('order'), sample_order(*args, **kwargs))[1]
    images = torch.randn(2, 3, IMG, IMG)
    model.loss(images)
    model.loss(images)
    assert calls == ['update', 'order', 'update', 'order']
    assert model.head.teacher.ema.steps.item() == 2
    model.eval()
    model.loss(images)  # no update outside training
    assert model.head.teacher.ema.steps.item() == 2
