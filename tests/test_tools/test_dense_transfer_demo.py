"""CPU transfer demos: a SAIM checkpoint from the demo pre-training fine-tuned with mmdet's Mask R-CNN
(evaluated by CocoMetric) and mmseg's UperNet (evaluated by IoUMetric), on the synthetic sets of
tools/misc/make_coco_demo.py and tools/misc/make_ade20k_demo.py."""
import json
import os.path as osp
import re
import subprocess
import sys
import uuid

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.runner import Runner

import saim_mm  # noqa: F401
from saim_mm.checkpoint import load_checkpoint_file
from tests.conftest import REPO, demo_train_cfg


@pytest.fixture(autouse=True, scope='module')
def one_thread():
    """These tiny models spend their time in small ops, where a second intra-op thread only adds
    synchronisation: measured on the 2-core test machine under load, a UperNet demo step took 0.4 s with one
    thread and 7 s with two."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope='module')
def saim_checkpoint(demo_data, tmp_path_factory) -> str:
    """One epoch of configs/saim/demo_cpu.py pre-training (the tiny ViT: 4 blocks, width 96, 4x4 patches)."""
    work = str(tmp_path_factory.mktemp('saim_pretrain'))
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        Runner.from_cfg(demo_train_cfg(demo_data, work, epochs=1)).train()  # 4 iterations
    return osp.join(work, 'epoch_1.pth')


def make_data(script: str, out: str) -> str:
    subprocess.run([sys.executable, osp.join(REPO, 'tools/misc', script), out, '--train', '8', '--val', '4',
                    '--size', '64'], check=True, capture_output=True)
    return out


def demo_cfg(rel: str, ckpt: str, work_dir: str, options: dict) -> Config:
    cfg = Config.fromfile(osp.join(REPO, 'configs', rel))
    cfg.merge_from_dict({'model.backbone.init_cfg.checkpoint': ckpt, 'randomness.seed': 0, **options})
    cfg.work_dir = work_dir
    cfg.experiment_name = f'test_{uuid.uuid4().hex[:8]}'
    return cfg


def load_report(runner: Runner) -> tuple:
    """Missing and unexpected keys that mmengine logged when the Pretrained init loaded the backbone."""
    with open(osp.join(runner.log_dir, f'{runner.timestamp}.log')) as f:
        log = f.read()
    assert re.search(r'Checkpoint .*epoch_1\.pth: layout saim_mm', log), 'no Pretrained load logged'
    found = lambda what: set(  # noqa: E731
        sum((m.split(', ') for m in re.findall(rf'{what} in source state_dict: ([^\n]*)', log)), []))
    return found('missing keys'), found('unexpected key'), log


def test_coco_mask_rcnn_from_saim_checkpoint(saim_checkpoint, tmp_path):
    data = make_data('make_coco_demo.py', str(tmp_path / 'coco'))
    with open(osp.join(data, 'annotations/instances_train2017.json')) as f:
        anns = json.load(f)['annotations']
    assert any(isinstance(a['segmentation'], dict) for a in anns)  # RLE masks
    assert any(isinstance(a['segmentation'], list) for a in anns)  # polygon masks
    cfg = demo_cfg('benchmarks/coco/mask-rcnn_saim-vit-demo_cpu.py', saim_checkpoint, str(tmp_path / 'work'), {
        'train_dataloader.dataset.data_root': data + '/', 'val_dataloader.dataset.data_root': data + '/',
        'test_dataloader.dataset.data_root': data + '/',
        'val_evaluator.ann_file': data + '/annotations/instances_val2017.json',
        'test_evaluator.ann_file': data + '/annotations/instances_val2017.json',
        'train_cfg.max_epochs': 2, 'train_cfg.val_interval': 2})
    with DefaultScope.overwrite_default_scope('mmdet'):  # leaves no mmdet default scope behind
        runner = Runner.from_cfg(cfg)
        runner.train()
    missing, unexpected, log = load_report(runner)
    # only the relative position biases, added on purpose, are new; the final norm is not used
    assert missing == {f'layers.{i}.attn.rel_pos_bias.table' for i in range(4)}
    assert unexpected == {'ln1.weight', 'ln1.bias'}
    state = load_checkpoint_file(saim_checkpoint, map_location='cpu')['state_dict']
    assert torch.equal(runner.model.backbone.cls_token, state['backbone.cls_token'])  # frozen: as loaded
    assert runner.iter == 4  # 2 epochs x 8 images / batch 4
    hub = runner.message_hub
    bbox, segm = hub.get_scalar('val/coco/bbox_mAP').current(), hub.get_scalar('val/coco/segm_mAP').current()
    print(f'Mask R-CNN demo after {runner.iter} iterations: bbox mAP {bbox:.3f}, segm mAP {segm:.3f}')
    assert 0.0 <= bbox <= 1.0 and 0.0 <= segm <= 1.0
    assert 'bbox_mAP_copypaste' in log and 'segm_mAP_copypaste' in log  # CocoMetric's summaries


def test_ade20k_upernet_from_saim_checkpoint(saim_checkpoint, tmp_path):
    data = make_data('make_ade20k_demo.py', str(tmp_path / 'ade'))
    cfg = demo_cfg('benchmarks/ade20k/upernet_saim-vit-demo_cpu.py', saim_checkpoint, str(tmp_path / 'work'), {
        'train_dataloader.dataset.data_root': data, 'val_dataloader.dataset.data_root': data,
        'test_dataloader.dataset.data_root': data, 'train_cfg.max_iters': 4, 'train_cfg.val_interval': 4})
    with DefaultScope.overwrite_default_scope('mmseg'):  # leaves no mmseg default scope behind
        runner = Runner.from_cfg(cfg)
        runner.train()
    missing, unexpected, log = load_report(runner)
    assert missing == {f'layers.{i}.attn.rel_pos_bias.table' for i in range(4)}
    assert unexpected == {'ln1.weight', 'ln1.bias'}
    assert 'Resize the pos_embed shape from torch.Size([1, 65, 96]) to torch.Size([1, 257, 96])' in log
    assert runner.iter == 4
    miou = runner.message_hub.get_scalar('val/mIoU').current()
    print(f'UperNet demo after {runner.iter} iterations: mIoU {miou:.2f}')
    assert 0.0 <= miou <= 100.0
    assert 'per class results' in log  # IoUMetric's table
