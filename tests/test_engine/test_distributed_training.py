"""Distributed SAIM training on 2 CPU processes (gloo), the way mmengine's Runner runs it.

1. With the images and generation orders fixed, 2 ranks with half the batch each end every step with the
   same (averaged) gradients and weights as 1 process with the whole batch.
2. In normal training the ranks draw different generation orders and different augmentations
   (``randomness.diff_rank_seed=True`` in the configs); with ``diff_rank_seed=False`` they would draw the same.
"""
import os
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.hooks import Hook
from mmengine.model import MMDistributedDataParallel
from mmengine.optim import build_optim_wrapper
from mmengine.runner import Runner
from mmpretrain.registry import MODELS
from PIL import Image

import saim_mm  # noqa: F401
from saim_mm.utils import setup_cpu_distributed
from tests.conftest import demo_train_cfg, spawn_gloo, tiny_saim_cfg

BATCH, STEPS, IMG, PATCH = 4, 3, 16, 4
N = (IMG // PATCH)**2


def fixed_batches():
    """STEPS batches of BATCH images (float64, already normalised) and their (B, N) generation orders."""
    gen = torch.Generator().manual_seed(123)
    images = [torch.randn(BATCH, 3, IMG, IMG, generator=gen, dtype=torch.float64) for _ in range(STEPS)]
    orders = [torch.stack([torch.randperm(N, generator=gen) for _ in range(BATCH)]) for _ in range(STEPS)]
    return images, orders


def tiny_float64_saim() -> torch.nn.Module:
    """The tiny SAIM in float64, with mmengine's plain preprocessor (keeps the given normalised images)."""
    torch.manual_seed(0)
    model = MODELS.build({**tiny_saim_cfg(img_size=IMG, patch=PATCH),
                          'data_preprocessor': dict(type='mmengine.BaseDataPreprocessor')})
    model.init_weights()
    return model.double().train()


def train_steps(model, rows: slice):
    """STEPS AdamW steps of ``model`` (a SAIM or its DDP wrapper) on rows ``rows`` of the fixed batches.

    Returns the gradients the optimiser saw at each step and the final weights.
    """
    module = model.module if isinstance(model, MMDistributedDataParallel) else model
    optim = build_optim_wrapper(module, dict(
        type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.95), weight_decay=0.05)))
    grads = []
    optim.optimizer.register_step_pre_hook(lambda *_: grads.append(
        {n: p.grad.clone() for n, p in module.named_parameters() if p.grad is not None}))
    for images, orders in zip(*fixed_batches()):
        module.sample_order = lambda batch_size, device, images=None, order=orders[rows]: order  # the fixed orders
        model.train_step(dict(inputs=images[rows], data_samples=None), optim)  # what the Runner calls
    weights = {n: p.detach().clone() for n, p in module.named_parameters()}
    return grads, weights


def half_batch_on_each_rank(rank: int, out: str) -> None:
    # the DDP wrapper that tools/train.py builds on a CPU-only machine (saim_mm.utils.setup_cpu_distributed)
    ddp = MMDistributedDataParallel(module=tiny_float64_saim(), device_ids=None, broadcast_buffers=False)
    half = BATCH // 2
    grads, weights = train_steps(ddp, slice(rank * half, (rank + 1) * half))
    torch.save(dict(grads=grads, weights=weights), osp.join(out, f'rank{rank}.pth'))


def test_two_ranks_with_half_batches_match_one_process_with_the_whole_batch(tmp_path):
    spawn_gloo(half_batch_on_each_rank, str(tmp_path))
    ranks = [torch.load(tmp_path / f'rank{r}.pth', weights_only=True) for r in (0, 1)]
    grads, weights = train_steps(tiny_float64_saim(), slice(0, BATCH))
    assert len(grads) == STEPS and len(grads[0]) > 50
    for r in ranks:
        assert len(r['grads']) == STEPS
        for step in range(STEPS):
            assert r['grads'][step].keys() == grads[step].keys()
            for name, g in grads[step].items():
                torch.testing.assert_close(r['grads'][step][name], g, rtol=1e-9, atol=1e-13,
                                           msg=f'step {step + 1}: gradient of {name}')
        for name, w in weights.items():
            # atol: the attention's key bias has a zero gradient in exact arithmetic (softmax ignores it), so
            # its gradient is rounding noise (~1e-17), which AdamW scales by lr/eps = 1e5
            torch.testing.assert_close(r['weights'][name], w, rtol=1e-9, atol=1e-11, msg=f'weight {name}')
    # and the half-batch gradients really differ from each other before averaging: this is not trivial
    one_rank, _ = train_steps(tiny_float64_saim(), slice(0, BATCH // 2))
    assert not torch.allclose(one_rank[0]['neck.ln.weight'], grads[0]['neck.ln.weight'])


class RecordBatches(Hook):
    """Keeps each iteration's images (after augmentation) and generation orders."""

    def __init__(self, model):
        self.images, self.orders = [], []
        sample_order = model.sample_order

        def recorded(*args, **kwargs):
            order = sample_order(*args, **kwargs)
            self.orders.append(order.clone())
            return order

        model.sample_order = recorded

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.images.append(torch.stack(list(data_batch['inputs'])).clone())


def train_one_epoch(rank: int, data_root: str, out: str, diff_rank_seed: bool) -> None:
    cfg = demo_train_cfg(data_root, osp.join(out, 'work'), epochs=1, **{
        'randomness.diff_rank_seed': diff_rank_seed, 'train_dataloader.num_workers': 1})
    cfg.launcher = 'pytorch'
    setup_cpu_distributed(cfg)  # as tools/train.py does
    runner = Runner.from_cfg(cfg)
    recorder = RecordBatches(runner.model.module)
    runner.register_hook(recorder)
    runner.train()
    torch.save(dict(images=recorder.images, orders=recorder.orders), osp.join(out, f'rank{rank}.pth'))


@pytest.fixture(scope='module')
def one_image_data(tmp_path_factory) -> str:
    """32 copies of one noise image: any difference between two ranks' batches comes from augmentation."""
    root = tmp_path_factory.mktemp('one_image')
    os.makedirs(root / 'train' / 'noise')
    img = Image.fromarray((np.random.default_rng(0).random((40, 40, 3)) * 255).astype(np.uint8))
    for i in range(32):
        img.save(root / 'train' / 'noise' / f'{i:02d}.png')
    return str(root)


@pytest.mark.parametrize('diff_rank_seed', [True, False])
def test_ranks_draw_different_orders_and_augmentations(one_image_data, tmp_path, diff_rank_seed):
    spawn_gloo(train_one_epoch, one_image_data, str(tmp_path), diff_rank_seed)
    rank0, rank1 = (torch.load(tmp_path / f'rank{r}.pth', weights_only=True) for r in (0, 1))
    assert len(rank0['orders']) == len(rank1['orders']) == 2  # 32 images, batch 8 on each of 2 ranks
    assert rank0['images'][0].shape == (8, 3, 32, 32)
    for key in ('orders', 'images'):
        same = [torch.equal(a, b) for a, b in zip(rank0[key], rank1[key])]
        if diff_rank_seed:  # the configs' setting
            assert not any(same), key
        else:  # the control: with one seed for all ranks, every rank would train on the same draws
            assert all(same), key
    # within a rank, the samples of a batch differ too (each sample has its own order and crop)
    assert not torch.equal(rank0['orders'][0][0], rank0['orders'][0][1])
    assert not torch.equal(rank0['images'][0][0], rank0['images'][0][1])
