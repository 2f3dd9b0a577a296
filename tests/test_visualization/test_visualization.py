"""The scripts in tools/visualization/ (built on saim_mm.apis and saim_mm.visualization) on a tiny checkpoint."""
import glob
import os.path as osp
import subprocess
import sys

import pytest
import torch
from PIL import Image

import saim_mm  # noqa: F401
from tests.conftest import REPO

DEMO = osp.join(REPO, 'configs/saim/demo_cpu.py')


@pytest.fixture(scope='module')
def tiny_checkpoint(demo_model, tmp_path_factory):
    path = str(tmp_path_factory.mktemp('ckpt') / 'tiny.pth')
    torch.save({'state_dict': demo_model.state_dict(), 'meta': {}}, path)
    return path


def run(script, *args):
    proc = subprocess.run([sys.executable, osp.join(REPO, 'tools/visualization', script), *args],
                          cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={'PYTHONPATH': REPO, 'PATH': '/usr/bin:/bin'})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_vis_attention_writes_png(demo_data, tiny_checkpoint, tmp_path):
    img = sorted(glob.glob(osp.join(demo_data, 'val', 'disc', '*.png')))[0]
    out = run('vis_attention.py', DEMO, tiny_checkpoint, img, '--out-dir', str(tmp_path), '--tile', '40')
    png = tmp_path / (osp.splitext(osp.basename(img))[0] + '_attention.png')
    assert str(png) in out
    with Image.open(png) as im:
        assert im.size == (40 * (2 + 3), 40)  # input, mean, 3 heads
        assert im.getextrema() != ((0, 0), (0, 0), (0, 0))


@pytest.mark.parametrize('mode', ['reconstruct', 'complete'])
def test_vis_reconstruction_writes_png(demo_data, tiny_checkpoint, tmp_path, mode):
    img = sorted(glob.glob(osp.join(demo_data, 'val', 'square', '*.png')))[0]
    run('vis_reconstruction.py', DEMO, tiny_checkpoint, img, '--mode', mode, '--order', 'random',
        '--keep', 'left', '--out-dir', str(tmp_path), '--tile', '48')
    png = tmp_path / (osp.splitext(osp.basename(img))[0] + f'_{mode}.png')
    with Image.open(png) as im:
        assert im.size == (3 * 48, 48)
        assert len(set(im.getdata())) > 10  # a picture, not a blank panel


def test_vis_attention_takes_an_index_name_and_the_authors_file(demo_data, tmp_path):
    """The tools load through saim_mm's loader: a model name of the index, a checkpoint in their layout."""
    from tests.test_checkpoint.test_official_layout import authors_state_dict
    src = str(tmp_path / 'theirs.pth')
    torch.save({'model': authors_state_dict(C=96, hidden=384, patch=4, img=32, kernel_size=3)}, src)
    img = sorted(glob.glob(osp.join(demo_data, 'val', 'disc', '*.png')))[0]
    out = run('vis_attention.py', 'saim_vit-demo-p4_1xb32-30e_demo', src, img, '--out-dir', str(tmp_path),
              '--tile', '24')
    assert (tmp_path / (osp.splitext(osp.basename(img))[0] + '_attention.png')).is_file(), out
