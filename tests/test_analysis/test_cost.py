"""saim_mm.analysis.cost: FLOPs by FlopCounterMode against written-out counts, peak memory, step time and
the fresh-process isolation."""
import os
import subprocess
import sys

import pytest
import torch
from torch import nn

from saim_mm.analysis.cost import (PeakMemory, count_flops, cpu_seconds, run_isolated, time_training_step,
                                   training_flops_by_part, training_flops_per_image)
from saim_mm.analysis.memory_plan import load_config, step_flops
from tests.conftest import REPO

VITB = os.path.join(REPO, 'configs/saim/vitb_800e.py')


def vit_saim_step_flops(C: int = 768, M: int = 12, F: int = 3072, img: int = 224, p: int = 16) -> float:
    """ViT-B/16 SAIM (decoder as deep as the encoder, MLP predictor) written out: matrix products only,
    multiply-add = 2 FLOPs, attention as full squares, a training step = 3 x the forward."""
    N = (img // p)**2
    L = N + 1
    embed = 2 * N * (3 * p * p) * C
    encoder = M * (2 * L * C * 3 * C + 2 * 2 * L * L * C + 2 * L * C * C + 2 * 2 * L * C * F)
    decoder = M * (2 * N * C * C + 2 * N * C * 2 * C + 2 * 2 * N * N * C + 2 * N * C * C + 2 * 2 * N * C * F)
    head = 2 * N * (C * 4 * C + 4 * C * 3 * p * p)
    return 3.0 * (embed + encoder + decoder + head)


def test_linear_layers_count_as_written_out():
    """Two Linear layers, input without gradient: forward 2·B·(i·h + h·o); backward: both weight gradients
    and the input gradient of the second layer only."""
    i, h, o, batch = 8, 16, 4, 5
    flops = training_flops_per_image(lambda: nn.Sequential(nn.Linear(i, h), nn.Linear(h, o)),
                                     lambda m, x: m(x.flatten(1)).sum(), (1, 2, 4), batch=batch)
    assert flops == 2 * (i * h + h * o) + 2 * (i * h + h * o) + 2 * h * o


def test_cpu_attention_is_counted_as_full_squares():
    q = k = v = torch.randn(2, 3, 10, 8)
    causal = count_flops(lambda: nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True))
    assert causal == 2 * (2 * 2 * 3 * 10 * 10 * 8)  # scores and values, no causal discount


def test_vit_b_saim_step_flops_agree_with_the_architecture():
    counted = step_flops(load_config(VITB), with_cp=False)
    assert counted == pytest.approx(vit_saim_step_flops(), rel=0.01)
    # ViT-B/16 encoder forward is the well-known 17.6 GMACs; SAIM adds a decoder of about that size
    assert 3 * 2 * 34e9 < counted < 3 * 2 * 37e9
    # with checkpointing the forward of every block runs again in the backward pass (up to the last tensor
    # the backward needs: torch stops the recomputation there)
    recomputed = step_flops(load_config(VITB), with_cp=True)
    assert 1.15 * counted < recomputed < 1.34 * counted


def test_cpu_peak_memory_counts_what_the_steps_add():
    meter = PeakMemory('cpu')
    meter.reset()
    block = torch.ones(64 * 2**20 // 4)  # 64 MiB, touched
    assert 63 < meter.peak_mib() < 64 + 32
    del block
    meter.reset()
    assert meter.peak_mib() < 16


def test_time_training_step_trains_and_times():
    torch.manual_seed(0)
    model = nn.Linear(4, 1)
    x = torch.randn(8, 4)
    before = model.weight.detach().clone()
    out = time_training_step(model, lambda: model(x).pow(2).mean(), warmup=1, repeats=3, memory_from='step')
    assert len(out['step_s_all']) == 3 and out['step_s'] == sorted(out['step_s_all'])[1]
    assert out['peak_mem_mib'] >= 0 and not torch.equal(model.weight, before)
    with pytest.raises(ValueError, match="memory_from must be one of \\('run', 'step'\\), got 'all'"):
        time_training_step(model, lambda: model(x).sum(), memory_from='all')


def allocate(case: dict) -> dict:
    block = torch.ones(case['mib'] * 2**20 // 4)
    return dict(case, pid=os.getpid(), total=float(block.sum()))


def fail(case: dict) -> dict:
    raise KeyError(f"no such row {case['row']!r}")


def die(case: dict) -> dict:
    os._exit(3)


def test_run_isolated_runs_in_a_fresh_process_and_reports_errors():
    out = run_isolated(allocate, dict(mib=8))
    assert out['pid'] != os.getpid() and out['total'] == 2 * 2**20
    with pytest.raises(RuntimeError, match="KeyError: \"no such row 'x'\""):
        run_isolated(fail, dict(row='x'))
    with pytest.raises(RuntimeError, match='child process died \\(exit code 3\\)'):
        run_isolated(die, dict(row='y'))


def test_cpu_seconds_count_this_process_and_its_children():
    before = cpu_seconds()
    subprocess.run([sys.executable, '-c', 'sum(i * i for i in range(3_000_000))'], check=True)
    sum(i * i for i in range(1_000_000))
    after = cpu_seconds()
    assert after['children'] > before['children'] + 0.05 and after['main'] > before['main']


def tiny_step_parts(C: int = 16, M: int = 2, F: int = 32, img: int = 16, p: int = 4) -> dict:
    """FLOPs of one image through a tiny SAIMViT, written out (multiply-add = 2 FLOPs, L = N + 1 tokens):
    ``embed`` the patch projection, ``linear`` the matrix products of the M blocks, ``attention`` their
    scores and values in full squares (4 L^2 C a block)."""
    N = (img // p)**2
    L = N + 1
    return dict(N=N, embed=2 * N * 3 * p * p * C, linear=M * (2 * L * C * 3 * C + 2 * L * C * C + 2 * 2 * L * C * F),
                attention=M * 4 * L * L * C)


def mlp_neck_flops(K: int, C: int, hidden: int, ratio: int, blocks: int, D: int) -> int:
    """MLPPredictionNeck's forward on K outputs: fc_in, the residual MLP blocks, fc_out."""
    return 2 * K * (C * hidden + blocks * 2 * hidden * ratio * hidden + hidden * D)


def tiny_family_model(attention='PrefixCausalAttention', order='raster', head=None, neck=True):
    from mmpretrain.registry import MODELS

    from tests.conftest import tiny_saim_cfg
    cfg = tiny_saim_cfg(depth=2, dec_depth=2, embed_dims=16, order=order)
    if attention:
        cfg['backbone']['layer_cfgs'] = dict(attn_cfg=dict(type=attention))
    if neck:
        cfg['neck'] = dict(type='MLPPredictionNeck', num_blocks=2, hidden_dims=8, mlp_ratio=2)
    cfg['head'] = head or dict(type='GaussianPixelLoss', patch_size=4, kernel_size=None)
    torch.manual_seed(0)
    return MODELS.build(cfg).train()


def pretrain_loss(model, images):
    return model.loss(images)['loss']


def test_prefix_causal_encoder_and_mlp_neck_count_as_written_out():
    """A training step: the patch projection forward and its weight gradient (2 x), every matrix product
    3 x (forward, input and weight gradients), attention 3.5 x (torch's backward formula recomputes the
    scores: 5 products of the forward's 2). The prefix costs what causal attention costs."""
    import saim_mm  # noqa: F401
    t = tiny_step_parts()
    expected = (2 * t['embed'] + 3 * t['linear'] + 3.5 * t['attention'] +
                3 * mlp_neck_flops(t['N'], 16, 8, 2, 2, 48))
    images = torch.randn(2, 3, 16, 16)
    aim = training_flops_by_part(tiny_family_model(), pretrain_loss, images)
    assert aim == dict(total=expected, order=0, target=0, trained=expected)
    causal = training_flops_by_part(tiny_family_model(attention=None), pretrain_loss, images)
    assert causal['total'] == expected


def test_a_teachers_forward_and_a_semantic_orders_pass_count_once_each():
    """EMA teacher (SemAIM): the target is one bidirectional forward of the averaged encoder; a semantic order
    scored by that teacher adds one more; neither has a backward pass."""
    import saim_mm  # noqa: F401
    t = tiny_step_parts()
    forward = t['embed'] + t['linear'] + t['attention']
    head = dict(type='FeatureTargetHead', patch_size=4, teacher=dict(type='EMATeacher'), feature_dims=16)
    images = torch.randn(2, 3, 16, 16)
    semantic = training_flops_by_part(
        tiny_family_model(None, dict(type='SemanticOrder', source='teacher'), head, neck=False), pretrain_loss, images)
    assert semantic['order'] == semantic['target'] == forward
    stochastic = training_flops_by_part(tiny_family_model(None, 'stochastic', head, neck=False), pretrain_loss, images)
    assert stochastic['order'] == 0 and stochastic['target'] == forward
    assert semantic['trained'] == stochastic['trained']  # the same encoder and decoder steps
    assert semantic['total'] == stochastic['total'] + forward


def test_pretrained_and_patch_embedding_teachers_count_their_forward(tmp_path):
    """D-iGPT: a ViT of its own width (24, 3 blocks) read from a file, forward only; NEPA: the encoder's patch
    projection, forward only. The MLP neck predicts the teacher's width."""
    import saim_mm  # noqa: F401
    from mmpretrain.models import VisionTransformer
    t = tiny_step_parts()
    vit = dict(type='mmpretrain.VisionTransformer', arch=dict(embed_dims=24, num_layers=3, num_heads=2,
                                                             feedforward_channels=48), img_size=16, patch_size=4)
    torch.save(VisionTransformer(**{k: v for k, v in vit.items() if k != 'type'}).state_dict(),
               str(tmp_path / 'teacher.pth'))
    teacher = tiny_step_parts(C=24, M=3, F=48)
    trained = 2 * t['embed'] + 3 * t['linear'] + 3.5 * t['attention']
    images = torch.randn(1, 3, 16, 16)
    digpt = training_flops_by_part(tiny_family_model(head=dict(
        type='FeatureTargetHead', patch_size=4, loss='cosine',
        teacher=dict(type='PretrainedTeacher', model=vit, checkpoint=str(tmp_path / 'teacher.pth')))),
        pretrain_loss, images)
    assert digpt['target'] == teacher['embed'] + teacher['linear'] + teacher['attention']
    assert digpt['trained'] == trained + 3 * mlp_neck_flops(t['N'], 16, 8, 2, 2, 24) and digpt['order'] == 0
    nepa = training_flops_by_part(tiny_family_model(head=dict(
        type='FeatureTargetHead', patch_size=4, loss='cosine', teacher=dict(type='PatchEmbedTeacher'),
        feature_dims=16)), pretrain_loss, images)
    assert nepa['target'] == t['embed']
    assert nepa['total'] == trained + 3 * mlp_neck_flops(t['N'], 16, 8, 2, 2, 16) + t['embed']
