"""saim_mm.visualization and the scripts in tools/visualization/ on a tiny checkpoint."""
import glob
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmpretrain.registry import MODELS
from PIL import Image

import saim_mm  # noqa: F401
from saim_mm.visualization import complete, last_layer_attention, reconstruct
from tests.conftest import REPO

DEMO = osp.join(REPO, 'configs/saim/demo_cpu.py')


@pytest.fixture(scope='module')
def demo_model():
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(DEMO).model)
    model.init_weights()
    return model.eval()


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


def test_attention_rows_sum_to_one(demo_model):
    attn = last_layer_attention(demo_model, torch.randn(2, 3, 32, 32))
    assert attn.shape == (2, 3, 65, 65)
    assert torch.allclose(attn.sum(-1), torch.ones(2, 3, 65))


def test_reconstruct_is_the_model_prediction_in_raster_order(demo_model):
    x = torch.randn(1, 3, 32, 32)
    order = torch.randperm(64)[None]
    target, pred = reconstruct(demo_model, x, order)
    assert target.shape == pred.shape == (1, 3, 32, 32)
    head = demo_model.head
    raw = head.patchify(head.smooth(x))
    std = (raw.var(-1, keepdim=True) + 1e-6)**.5
    mean = raw[0, order[0]].mean(-1, keepdim=True)
    expected = demo_model.predict_patches(x, order) * std[0, order[0]] + mean
    assert torch.allclose(head.patchify(pred)[0, order[0]], expected[0], atol=1e-5)


def test_complete_keeps_the_given_patches_and_fills_the_rest(demo_model):
    x = torch.randn(1, 3, 32, 32)
    keep = torch.zeros(64, dtype=torch.bool)
    keep[:32] = True
    out = demo_model.head.patchify(complete(demo_model, x, keep))
    given = demo_model.head.patchify(x)
    assert torch.equal(out[0, :32], given[0, :32])
    assert not torch.allclose(out[0, 32:], given[0, 32:])
    with pytest.raises(ValueError, match='exactly the patches that keep leaves out'):
        complete(demo_model, x, keep, order=torch.arange(10))


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
