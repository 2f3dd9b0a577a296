"""saim_mm.analysis.memory_plan: its memory figures agree with independent counts, and its per-GPU batch
is the largest that fits."""
import os.path as osp

import pytest
import torch
from mmpretrain.registry import MODELS

import saim_mm  # noqa: F401
from saim_mm.analysis import memory_plan
from tests.conftest import REPO

DEMO = osp.join(REPO, 'configs/saim/demo_cpu.py')


def saved_for_backward(cfg, batch: int) -> int:
    """Bytes of the distinct storages autograd keeps after a real forward (parameters and input excluded)."""
    torch.manual_seed(0)
    model = MODELS.build(memory_plan.model_cfg(cfg, with_cp=False)).train()
    x = torch.randn(batch, *memory_plan.image_shape(cfg))
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
    cfg = memory_plan.load_config(DEMO)
    measured = memory_plan.measure_step(cfg, with_cp=False, batch=4)['kept']
    assert measured == pytest.approx(saved_for_backward(cfg, 4), rel=0.02)


def test_checkpointing_keeps_less_and_activations_grow_with_the_batch():
    cfg = memory_plan.load_config(DEMO)
    plain = [memory_plan.measure_step(cfg, with_cp=False, batch=b)['kept'] for b in (2, 4)]
    ckpt = [memory_plan.measure_step(cfg, with_cp=True, batch=b)['kept'] for b in (2, 4)]
    assert plain[1] == pytest.approx(2 * plain[0], rel=0.02)
    assert ckpt[1] == pytest.approx(2 * ckpt[0], rel=0.02)
    assert ckpt[0] < 0.3 * plain[0]


def test_largest_batch_is_the_largest_power_of_two_that_fits():
    cfg = memory_plan.load_config(DEMO)
    planner = memory_plan.Planner(cfg, usable=1.0, reserve_gib=0.0)
    p32, p64 = planner.step(False, 32)['peak'], planner.step(False, 64)['peak']
    assert p64 > p32 > 0
    gib = (p32 + p64) / 2 / memory_plan.GIB  # 32 fits, 64 does not
    fit = planner.largest_batch(False, gib, per_gpu_max=256)
    assert fit == dict(batch=32, peak=p32)
    assert planner.largest_batch(False, gib, per_gpu_max=16)['batch'] == 16  # capped by the total batch
    small = planner.step(False, 1)['peak'] / memory_plan.GIB
    assert planner.largest_batch(False, 0.9 * small, per_gpu_max=256)['batch'] is None


def test_fsdp_divides_the_states_and_adds_two_blocks():
    m = dict(backward=dict(Total=100, Parameter=10, Gradient=20, Optstate=30),
             update=dict(Total=90, Parameter=10, Gradient=20, Optstate=40))
    assert memory_plan.step_peak(m) == 100
    assert memory_plan.step_peak(m, gpus=2, largest_block=1) == max(100 - 60 + 30 + 8, 90 - 70 + 35 + 8)


def test_total_batch_must_divide_among_the_gpus():
    with pytest.raises(ValueError, match='--total-batch 100 is not divisible by --gpus 8'):
        memory_plan.plan(DEMO, [40], gpus=8, total_batch=100)
