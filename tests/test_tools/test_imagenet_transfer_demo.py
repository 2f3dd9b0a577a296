"""End to end on the CPU: SAIM pre-training -> backbone checkpoint -> fine-tune and linear probe -> top-1.

The tiny version of the README's "Fine-tuning and linear probing" CPU demo: configs/saim/demo_cpu.py,
tools/model_converters/saim2backbone.py, configs/benchmarks/demo/{finetune,linear}_cpu.py on the labelled
images of tools/misc/make_demo_data.py, top-1 from mmpretrain's Accuracy metric.
"""
import os
import os.path as osp
import subprocess
import sys
import uuid

import torch
from mmengine.config import Config
from mmengine.runner import Runner

import saim_mm  # noqa: F401
from tests.conftest import REPO, demo_train_cfg


def transfer_cfg(rel: str, data_root: str, work_dir: str, checkpoint: str, epochs: int) -> Config:
    cfg = Config.fromfile(osp.join(REPO, 'configs', rel))
    options = {'model.backbone.init_cfg.checkpoint': checkpoint, 'train_cfg.max_epochs': epochs,
               'train_cfg.val_interval': epochs, 'default_hooks.checkpoint.interval': epochs,
               'train_dataloader.batch_size': 8, 'default_hooks.logger.interval': 1, 'randomness.seed': 0}
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        options.update({f'{key}.dataset.data_root': data_root, f'{key}.num_workers': 0,
                        f'{key}.persistent_workers': False})
    cfg.merge_from_dict(options)
    cfg.param_scheduler = [dict(type='CosineAnnealingLR', T_max=epochs, by_epoch=True, begin=0, end=epochs)]
    cfg.work_dir = work_dir
    cfg.experiment_name = f'test_{uuid.uuid4().hex[:8]}'
    return cfg


def test_pretrain_convert_finetune_probe(demo_data, tmp_path):
    # 1. SAIM pre-training (2 epochs of the CPU demo)
    pre_dir = str(tmp_path / 'pretrain')
    Runner.from_cfg(demo_train_cfg(demo_data, pre_dir, epochs=2, batch=8)).train()
    # 2. backbone-only checkpoint
    backbone = str(tmp_path / 'backbone.pth')
    run = subprocess.run([sys.executable, osp.join(REPO, 'tools/model_converters/saim2backbone.py'),
                          osp.join(pre_dir, 'epoch_2.pth'), backbone], capture_output=True, text=True,
                         cwd=REPO, env={**os.environ, 'PYTHONPATH': REPO}, timeout=300)
    assert run.returncode == 0, run.stderr
    assert 'dropped checkpoint entries:' in run.stdout and 'optimizer' in run.stdout
    pretrained = torch.load(backbone, weights_only=True)['state_dict']

    results = {}
    for name, rel in (('fine-tune', 'benchmarks/demo/finetune_cpu.py'),
                      ('linear probe', 'benchmarks/demo/linear_cpu.py')):
        cfg = transfer_cfg(rel, demo_data, str(tmp_path / name.replace(' ', '_')), backbone, epochs=2)
        runner = Runner.from_cfg(cfg)
        runner.train()
        metrics = runner.val()
        top1 = metrics['accuracy/top1']
        print(f'{name}: top-1 {top1:.1f} % on {len(runner.val_dataloader.dataset)} held-out images')
        assert 0.0 <= top1 <= 100.0
        results[name] = runner.model
    # the probe trained its head on the pre-trained encoder, which stayed exactly as converted
    probe = results['linear probe']
    for k, v in probe.backbone.state_dict().items():
        assert torch.equal(v, pretrained['backbone.' + k]), k
    # fine-tuning started from it and changed it
    tuned = results['fine-tune']
    assert not torch.equal(tuned.backbone.layers[0].attn.qkv.weight, pretrained['backbone.layers.0.attn.qkv.weight'])
