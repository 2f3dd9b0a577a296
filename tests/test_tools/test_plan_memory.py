"""tools/analysis/plan_memory.py: its memory and FLOP figures agree with independent counts, and its
per-GPU batch is the largest that fits."""
import json
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmpretrain.registry import MODELS

import saim_mm  # noqa: F401
from tests.conftest import REPO

sys.path.insert(0, osp.join(REPO, 'tools/analysis'))
import plan_memory  # noqa: E402
from benchmark_pretrain import step_flops as formula_flops  # noqa: E402

DEMO = osp.join(REPO, 'configs/saim/demo_cpu.py')
VITB = osp.join(REPO, 'configs/saim/vitb_800e.py')


def saved_for_backward(cfg, batch: int) -> int:
    """Bytes of the distinct storages autograd keeps after a real forward (parameters and input excluded)."""
    torch.manual_seed(0)
    model = MODELS.build(plan_memory.model_cfg(cfg, with_cp=False)).train()
    x = torch.randn(batch, *plan_memory.image_shape(model))
    own = {t.untyped_storage().data_ptr() for t in [*model.parameters(), *model.buffers(), x]}
    storages = {}

    def pack(t):
        ptr = t.untyped_storage().data_ptr()
        if ptr not in own:
            storages[ptr] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = model.loss(x)['loss']
    return sum(storages.values()) + loss.untyped_storage().nbytes()


def test_activations_kept_equal_the_tensors_autograd_saves():
    cfg = plan_memory.load_config(DEMO)
    measured = plan_memory.measure_step(cfg, with_cp=False, batch=4)['kept']
    assert measured == pytest.approx(saved_for_backward(cfg, 4), rel=0.02)


def test_checkpointing_keeps_less_and_activations_grow_with_the_batch():
    cfg = plan_memory.load_config(DEMO)
    plain = [plan_memory.measure_step(cfg, with_cp=False, batch=b)['kept'] for b in (2, 4)]
    ckpt = [plan_memory.measure_step(cfg, with_cp=True, batch=b)['kept'] for b in (2, 4)]
    assert plain[1] == pytest.approx(2 * plain[0], rel=0.02)
    assert ckpt[1] == pytest.approx(2 * ckpt[0], rel=0.02)
    assert ckpt[0] < 0.3 * plain[0]


def test_flops_agree_with_the_architecture_count():
    """FlopCounterMode on the ViT-B config vs the benchmark's count from the architecture (3 x forward, full
    attention squares)."""
    counted = plan_memory.step_flops(plan_memory.load_config(VITB), with_cp=False)
    assert counted == pytest.approx(formula_flops('b', 224), rel=0.01)
    # with checkpointing the forward of every block runs again in the backward pass (up to the last tensor
    # the backward needs: torch stops the recomputation there)
    recomputed = plan_memory.step_flops(plan_memory.load_config(VITB), with_cp=True)
    assert 1.15 * counted < recomputed < 1.34 * counted


def test_largest_batch_is_the_largest_power_of_two_that_fits():
    cfg = plan_memory.load_config(DEMO)
    planner = plan_memory.Planner(cfg, usable=1.0, reserve_gib=0.0)
    p32, p64 = planner.step(False, 32)['peak'], planner.step(False, 64)['peak']
    assert p64 > p32 > 0
    gib = (p32 + p64) / 2 / plan_memory.GIB  # 32 fits, 64 does not
    fit = planner.largest_batch(False, gib, per_gpu_max=256)
    assert fit == dict(batch=32, peak=p32)
    assert planner.largest_batch(False, gib, per_gpu_max=16)['batch'] == 16  # capped by the total batch
    small = planner.step(False, 1)['peak'] / plan_memory.GIB
    assert planner.largest_batch(False, 0.9 * small, per_gpu_max=256)['batch'] is None


def test_command_line_prints_the_plan(tmp_path):
    out = str(tmp_path / 'plan.json')
    proc = subprocess.run([sys.executable, 'tools/analysis/plan_memory.py', DEMO, '--gpu-mem', '4', '8',
                           '--out', out], cwd=REPO, capture_output=True, text=True, timeout=600,
                          env={'PYTHONPATH': REPO, 'PATH': '/usr/bin:/bin'})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'batch x accum' in proc.stdout and 'parameters:' in proc.stdout
    plan = json.load(open(out))
    for variant in plan['variants'].values():
        for fit in variant['fits'].values():
            assert fit['batch'] * fit['accumulative_counts'] * plan['gpus'] == plan['total_batch']
