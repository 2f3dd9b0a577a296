"""A missing data set stops tools/train.py and tools/test.py before the model is built, naming the path and
the --cfg-options key that moves it (saim_mm.utils.data_roots)."""
import os.path as osp
import subprocess
import sys

import pytest
from mmengine.config import Config

import saim_mm  # noqa: F401
from saim_mm.utils.data_roots import TEST_LOADERS, DataRootNotFoundError, check_data_roots
from tests.conftest import REPO


def run_tool(tool, *args, cwd):
    return subprocess.run([sys.executable, osp.join(REPO, 'tools', tool), *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, env={'PYTHONPATH': REPO, 'PATH': '/usr/bin:/bin'}, timeout=300)


def test_train_on_the_paper_config_without_imagenet(tmp_path):
    """configs/saim/vitb_800e.py run where there is no data/imagenet/."""
    run = run_tool('train.py', osp.join(REPO, 'configs/saim/vitb_800e.py'), '--work-dir', tmp_path / 'w',
                   cwd=tmp_path)
    assert run.returncode != 0
    assert run.stderr.strip() == (
        "error: Data set not found: data/imagenet/ does not exist (train_dataloader.dataset.data_root="
        "'data/imagenet/'). Put the data there, or point the config at it with --cfg-options "
        'train_dataloader.dataset.data_root=PATH.')
    assert not (tmp_path / 'w').exists()  # stopped before the Runner (and the model) was made


def test_train_on_the_coco_demo_config_with_a_data_root_that_does_not_exist(tmp_path):
    missing = tmp_path / 'no_coco_here'
    run = run_tool('train.py', osp.join(REPO, 'configs/benchmarks/coco/mask-rcnn_saim-vit-demo_cpu.py'),
                   '--work-dir', tmp_path / 'w', '--cfg-options', f'train_dataloader.dataset.data_root={missing}',
                   cwd=REPO)
    assert run.returncode != 0
    assert f'Data set not found: {missing} does not exist' in run.stderr
    assert '--cfg-options train_dataloader.dataset.data_root=PATH' in run.stderr
    assert 'Traceback' not in run.stderr and not (tmp_path / 'w').exists()


def test_paths_under_an_existing_root_and_wrapped_datasets(tmp_path):
    (tmp_path / 'coco' / 'annotations').mkdir(parents=True)
    cfg = Config.fromfile(osp.join(REPO, 'configs/benchmarks/coco/mask-rcnn_saim-vit-demo_cpu.py'))
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = str(tmp_path / 'coco')
    with pytest.raises(DataRootNotFoundError) as err:
        check_data_roots(cfg)
    assert str(err.value) == (
        f"Data set not found: {tmp_path}/coco/annotations/instances_train2017.json does not exist "
        "(train_dataloader.dataset.ann_file='annotations/instances_train2017.json' under "
        f"train_dataloader.dataset.data_root='{tmp_path}/coco'). Put the data there, or point the config at "
        'it with --cfg-options train_dataloader.dataset.data_root=PATH.')
    # the ADE20K config's image folder, inside a RepeatDataset
    ade = Config.fromfile(osp.join(REPO, 'configs/benchmarks/ade20k/upernet_saim-vit-demo_cpu.py'))
    (tmp_path / 'ade').mkdir()
    ade.train_dataloader.dataset = dict(type='RepeatDataset', times=2,
                                        dataset=dict(ade.train_dataloader.dataset, data_root=str(tmp_path / 'ade')))
    with pytest.raises(DataRootNotFoundError, match=r'train_dataloader\.dataset\.dataset\.data_prefix\.img_path'):
        check_data_roots(ade)
    # ImageNet by split: ROOT/train/ (or ROOT/meta/train.txt)
    imagenet = Config.fromfile(osp.join(REPO, 'configs/saim/vitb_800e.py'))
    imagenet.train_dataloader.dataset.data_root = str(tmp_path)
    with pytest.raises(DataRootNotFoundError, match=rf"{tmp_path}/train does not exist \(train_dataloader"
                       r"\.dataset\.split='train' under"):
        check_data_roots(imagenet)
    (tmp_path / 'train').mkdir()
    check_data_roots(imagenet)
    check_data_roots(imagenet, TEST_LOADERS)  # a pre-training config has no test loader: nothing to check


def test_test_tool_checks_the_test_loader(tmp_path):
    run = run_tool('test.py', osp.join(REPO, 'configs/benchmarks/demo/linear_cpu.py'), tmp_path / 'none.pth',
                   '--cfg-options', f'test_dataloader.dataset.data_root={tmp_path / "gone"}', cwd=REPO)
    assert run.returncode != 0
    assert f"error: Data set not found: {tmp_path / 'gone'} does not exist (test_dataloader.dataset.data_root=" \
        in run.stderr
