"""The scripts in tools/visualization/ (built on saim_mm.apis and saim_mm.visualization) on a tiny checkpoint,
and the labelled panels they draw."""
import glob
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import saim_mm  # noqa: F401
from saim_mm.visualization import CAPTION_BACKGROUND, order_map, stack_rows, tile_row
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
    assert 'input, mean attention, head 1, head 2, head 3' in out
    with Image.open(png) as im:
        assert im.width == 40 * (2 + 3)  # input, mean, 3 heads
        assert im.height > 40  # the caption strip above the panels
        assert im.getextrema() != ((0, 0), (0, 0), (0, 0))
        assert_captioned(im, 5, 40)


@pytest.mark.parametrize('mode', ['reconstruct', 'complete'])
def test_vis_reconstruction_writes_png(demo_data, tiny_checkpoint, tmp_path, mode):
    img = sorted(glob.glob(osp.join(demo_data, 'val', 'square', '*.png')))[0]
    out = run('vis_reconstruction.py', DEMO, tiny_checkpoint, img, '--mode', mode, '--order', 'random',
              '--keep', 'left', '--out-dir', str(tmp_path), '--tile', '48')
    png = tmp_path / (osp.splitext(osp.basename(img))[0] + f'_{mode}.png')
    panels = 4 if mode == 'reconstruct' else 3
    expected = ('input, smoothed target, prediction, order (dark = early)' if mode == 'reconstruct'
                else 'input, given (left 0.5), completed (random order)')
    assert expected in out
    with Image.open(png) as im:
        assert im.width == panels * 48 and im.height > 48
        assert len(set(im.getdata())) > 10  # a picture, not a blank panel
        assert_captioned(im, panels, 48)


def assert_captioned(im: Image.Image, panels: int, tile: int) -> None:
    """Every panel has text (dark pixels) in the white strip above it."""
    a = np.asarray(im.convert('RGB'))
    strip = a[:im.height - tile]
    for i in range(panels):
        caption = strip[:, i * tile:(i + 1) * tile]
        assert (caption.sum(-1) < 3 * 128).any(), f'panel {i} has no caption'
        assert (caption == CAPTION_BACKGROUND).all(-1).any(), f'panel {i}: no caption background'


def test_tile_row_draws_each_label_above_its_panel():
    """The caption of a panel is the label drawn with PIL's default font: the same text gives the same
    pixels, another text other pixels; a label wider than the panel wraps onto more lines."""
    grey = np.full((8, 8, 3), 128, np.uint8)
    a = np.asarray(tile_row([grey, grey], 64, ['input', 'prediction']))
    b = np.asarray(tile_row([grey, grey], 64, ['input', 'input']))
    strip = a.shape[0] - 64
    assert strip > 0 and (a[strip:] == 128).all()  # panels below the strip, unchanged
    assert (a[:strip, :64] == b[:strip, :64]).all()  # same label, same pixels
    assert (a[:strip, 64:] != b[:strip, 64:]).any()  # another label, other pixels
    assert (a[:strip, :64].sum(-1) < 3 * 64).any()  # dark text on white
    wrapped = tile_row([grey], 24, ['smoothed target'])
    assert wrapped.height - 24 > strip  # two or more lines
    assert tile_row([grey], 24).size == (24, 24)  # no labels: no strip
    with pytest.raises(ValueError, match='2 panels and 1 labels'):
        tile_row([grey, grey], 24, ['input'])


def test_order_map_and_stack_rows():
    """order_map colours each patch by its step (first step darkest); stack_rows keeps every row."""
    order = torch.tensor([3, 0, 2, 1])  # patch 3 first, patch 1 last
    img = order_map(order, (2, 2), (2, 2)).astype(int).sum(-1)
    assert img[1, 1] < img[0, 0] < img[1, 0] < img[0, 1]  # steps 0 < 1 < 2 < 3 (inferno is monotone)
    with pytest.raises(ValueError, match='expected 4'):
        order_map(torch.arange(3), (2, 2), (2, 2))
    rows = [Image.new('RGB', (30, 10), (1, 2, 3)), Image.new('RGB', (20, 15), (4, 5, 6))]
    out = stack_rows(rows)
    assert out.size == (30, 25)
    assert out.getpixel((0, 0)) == (1, 2, 3) and out.getpixel((0, 10)) == (4, 5, 6)
    assert out.getpixel((25, 12)) == CAPTION_BACKGROUND


def test_vis_attention_takes_an_index_name_and_the_authors_file(demo_data, tmp_path):
    """The tools load through saim_mm's loader: a model name of the index, a checkpoint in their layout."""
    from tests.test_checkpoint.test_official_layout import authors_state_dict
    src = str(tmp_path / 'theirs.pth')
    torch.save({'model': authors_state_dict(C=96, hidden=384, patch=4, img=32, kernel_size=3)}, src)
    img = sorted(glob.glob(osp.join(demo_data, 'val', 'disc', '*.png')))[0]
    out = run('vis_attention.py', 'saim_vit-demo-p4_1xb32-30e_demo', src, img, '--out-dir', str(tmp_path),
              '--tile', '24')
    assert (tmp_path / (osp.splitext(osp.basename(img))[0] + '_attention.png')).is_file(), out
