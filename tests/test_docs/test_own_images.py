"""docs/pretrain.md, "Your own unlabelled images", works as written.

The test writes 20 images of assorted sizes and modes straight into ``data/my_images/`` (no class
folders) of a scratch folder, saves the page's two configs under the names the page gives them, runs the
page's CPU command (one epoch of the tiny model) and checks the checkpoint. The page's GPU command is
not run; its config is built and its data set is read here instead.
"""
import os
import os.path as osp
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tests.conftest import REPO
from tests.test_docs.markdown import code_blocks, make_sandbox, read, section, shell_commands, split_command

SECTION = 'Your own unlabelled images'
GPU_ONLY = ('tools/dist_train.sh my_saim.py 8', )


def page():
    text = section(read('docs/pretrain.md'), SECTION)
    configs = {}
    for block in code_blocks(text, ('python', )):
        name = re.match(r'# (\S+\.py):', block)
        assert name, f'a config block of "{SECTION}" does not start with "# FILE.py: ...":\n{block}'
        configs[name.group(1)] = block
    commands = [c for block in code_blocks(text) for c in shell_commands(block)]
    return configs, commands


def write_images(folder: str, n: int = 20) -> None:
    """``n`` images straight in ``folder``: RGB PNG and JPEG of assorted sizes, one grey, one RGBA."""
    os.makedirs(folder)
    rng = np.random.default_rng(0)
    for i in range(n):
        h, w = (int(v) for v in rng.integers(24, 64, size=2))
        img = Image.fromarray(rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8))
        if i == 0:
            img = img.convert('L')
        elif i == 1:
            img = img.convert('RGBA')
        img.save(osp.join(folder, f'{i:04d}.{"jpg" if i % 3 == 2 else "png"}'))


@pytest.fixture(scope='module')
def sandbox(tmp_path_factory):
    root = make_sandbox(str(tmp_path_factory.mktemp('own_images')))
    write_images(osp.join(root, 'data', 'my_images'))
    configs, _ = page()
    for name, text in configs.items():
        with open(osp.join(root, name), 'w') as f:
            f.write(text)
    return root


def test_the_page_has_the_configs_and_commands():
    configs, commands = page()
    assert set(configs) == {'my_saim.py', 'my_saim_cpu.py'}
    assert [c for c in commands if c not in GPU_ONLY] == [
        '.venv/bin/python tools/train.py my_saim_cpu.py --cfg-options train_cfg.max_epochs=1']
    assert set(GPU_ONLY) <= set(commands)


def test_cpu_command_trains_one_epoch_and_writes_a_checkpoint(sandbox):
    _, commands = page()
    env = dict(os.environ, PYTHONPATH=REPO)
    for cmd in commands:
        if cmd in GPU_ONLY:
            continue
        for argv in split_command(cmd):
            assert argv[0] == '.venv/bin/python'
            proc = subprocess.run((sys.executable, ) + argv[1:], cwd=sandbox, env=env, capture_output=True,
                                  text=True, timeout=600)
            assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    ckpt = osp.join(sandbox, 'work_dirs', 'my_saim_cpu', 'epoch_1.pth')
    assert osp.isfile(ckpt)
    import torch
    state = torch.load(ckpt, map_location='cpu', weights_only=False)['state_dict']
    assert 'backbone.patch_embed.projection.weight' in state


def test_the_gpu_config_reads_the_folder(sandbox, monkeypatch):
    """my_saim.py is the ViT-B recipe with CustomDataset(with_label=False) over the 20 images."""
    import saim_mm  # noqa: F401
    from mmengine.config import Config
    from mmpretrain.registry import DATASETS
    monkeypatch.chdir(sandbox)
    cfg = Config.fromfile('my_saim.py')
    base = Config.fromfile('configs/saim/vitb_800e.py')
    ds = cfg.train_dataloader.dataset
    assert ds.type == 'CustomDataset' and ds.with_label is False and ds.data_root == 'data/my_images'
    assert ds.pipeline == base.train_dataloader.dataset.pipeline
    assert cfg.model == base.model and cfg.optim_wrapper == base.optim_wrapper
    dataset = DATASETS.build(ds)
    assert len(dataset) == 20
    assert dataset[0]['inputs'].shape == (3, 224, 224)
