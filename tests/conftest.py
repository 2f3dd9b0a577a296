import os
import os.path as osp
import socket
import subprocess
import sys

import pytest
import torch

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))

if os.environ.get('PYTEST_XDIST_WORKER'):
    # two test workers share the two cores: one intra-op thread each, also in the tools the tests start
    # (two threads per worker oversubscribe the cores, and tiny models gain nothing from a second thread)
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    torch.set_num_threads(1)


def tiny_saim_cfg(depth: int = 4, dec_depth: int = 4, embed_dims: int = 32, heads: int = 2,
                  patch: int = 4, img_size=16, shared: bool = False, predictor: str = 'mlp',
                  kernel_size=3, sigma: float = 1.0, norm_pix: bool = True, criterion: str = 'L2',
                  order: str = 'stochastic') -> dict:
    """Config of a tiny SAIM (the structure of configs/_base_/models/saim_vit-base-p16.py)."""
    return dict(
        type='SAIM',
        order=order,
        backbone=dict(
            type='SAIMViT',
            arch=dict(embed_dims=embed_dims, num_layers=depth, num_heads=heads,
                      feedforward_channels=2 * embed_dims),
            img_size=img_size,
            patch_size=patch),
        neck=dict(
            type='SAIMDecoder', embed_dims=embed_dims, num_layers=dec_depth, num_heads=heads,
            feedforward_channels=2 * embed_dims, patch_size=patch, share_encoder_weights=shared,
            predictor=predictor),
        head=dict(
            type='GaussianPixelLoss', patch_size=patch, kernel_size=kernel_size, sigma=sigma,
            norm_pix=norm_pix, loss=dict(type='PixelReconstructionLoss', criterion=criterion)),
        init_cfg=[
            dict(type='Xavier', layer='Linear', distribution='uniform'),
            dict(type='Constant', layer='LayerNorm', val=1.0, bias=0.0)
        ])


def build_tiny_saim(**kwargs) -> torch.nn.Module:
    import saim_mm  # noqa: F401
    from mmpretrain.registry import MODELS
    model = MODELS.build(tiny_saim_cfg(**kwargs))
    model.init_weights()
    return model.eval()


def assert_train_steps_change_the_head_only(model: torch.nn.Module, num_classes: int, img_size: int = 16,
                                            weight_decay: float = 0.01) -> None:
    """Two AdamW ``train_step`` s of a classifier with a frozen backbone on random images: every backbone
    parameter stays bit-identical without a gradient, every head parameter changes."""
    from mmengine.optim import build_optim_wrapper
    from mmpretrain.structures import DataSample
    model.train()
    backbone = {n: p.detach().clone() for n, p in model.backbone.named_parameters()}
    head = {n: p.detach().clone() for n, p in model.head.named_parameters()}
    optim = build_optim_wrapper(model, dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-2,
                                                                                 weight_decay=weight_decay)))
    data = dict(inputs=torch.randn(4, 3, img_size, img_size),
                data_samples=[DataSample().set_gt_label(i % num_classes) for i in range(4)])
    for _ in range(2):
        losses = model.train_step(data, optim)
    assert torch.isfinite(losses['loss'])
    for name, p in model.backbone.named_parameters():
        assert not p.requires_grad and p.grad is None, name
        assert torch.equal(p, backbone[name]), name
    for name, p in model.head.named_parameters():
        assert p.requires_grad and not torch.equal(p, head[name]), name


@pytest.fixture(scope='module')
def demo_model() -> torch.nn.Module:
    """The model of configs/saim/demo_cpu.py, initialised from seed 0, in eval mode."""
    import saim_mm  # noqa: F401
    from mmengine.config import Config
    from mmpretrain.registry import MODELS
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(osp.join(REPO, 'configs/saim/demo_cpu.py')).model)
    model.init_weights()
    return model.eval()


@pytest.fixture(scope='session')
def demo_data(tmp_path_factory) -> str:
    """A small synthetic image set made by tools/misc/make_demo_data.py (ImageNet-style folders)."""
    out = str(tmp_path_factory.mktemp('demo_data'))
    subprocess.run([sys.executable, osp.join(REPO, 'tools/misc/make_demo_data.py'), out,
                    '--train-per-class', '8', '--val-per-class', '2', '--size', '24'],
                   check=True, capture_output=True)
    return out


def demo_train_cfg(data_root: str, work_dir: str, epochs: int = 2, batch: int = 8, **options):
    """configs/saim/demo_cpu.py made tiny for in-process Runner tests (main-process data, seed 0).

    ``options`` are ``--cfg-options``-style overrides, e.g. ``{'default_hooks.checkpoint.by_epoch': False}``.
    """
    import uuid

    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(REPO, 'configs/saim/demo_cpu.py'))
    cfg.merge_from_dict({
        'train_dataloader.dataset.data_root': data_root, 'train_cfg.max_epochs': epochs,
        'train_dataloader.batch_size': batch, 'train_dataloader.num_workers': 0,
        'train_dataloader.persistent_workers': False, 'default_hooks.checkpoint.interval': 1,
        'default_hooks.checkpoint.max_keep_ckpts': -1, 'default_hooks.logger.interval': 1,
        'randomness.seed': 0, **options
    })
    cfg.work_dir = work_dir
    cfg.experiment_name = f'test_{uuid.uuid4().hex[:8]}'  # mmengine keeps global instances per name
    return cfg


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _gloo_process(rank: int, fn, world_size: int, port: int, args: tuple) -> None:
    import torch.distributed as dist
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE=str(world_size))
    dist.init_process_group('gloo', rank=rank, world_size=world_size)
    try:
        fn(rank, *args)
    finally:
        dist.destroy_process_group()


def spawn_gloo(fn, *args, world_size: int = 2) -> None:
    """Run ``fn(rank, *args)`` in ``world_size`` CPU processes joined by a gloo process group.

    ``fn`` must be a module-level function (the processes are spawned); an exception in any process fails
    the call.
    """
    import torch.multiprocessing as mp
    mp.spawn(_gloo_process, args=(fn, world_size, free_port(), args), nprocs=world_size, join=True)
