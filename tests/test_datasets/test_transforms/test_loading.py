"""Bad images: handled correctly (grey, RGBA, 16-bit, tiny) or refused with an error that names the file."""
import io
import os
import os.path as osp
import shutil
import subprocess
import sys

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.registry import init_default_scope
from PIL import Image

import saim_mm  # noqa: F401
from saim_mm.datasets.transforms import CheckedLoadImageFromFile, ImageLoadError
from tests.conftest import REPO, free_port
from tests.test_tools.test_train import DEMO, env_with_venv, tiny_run_options


def demo_pipeline() -> Compose:
    init_default_scope('mmpretrain')
    return Compose(Config.fromfile(DEMO).train_pipeline)


def save(path, array: np.ndarray, fmt: str = 'PNG') -> str:
    Image.fromarray(array).save(path, fmt)
    return str(path)


def encoded(array: np.ndarray, fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, fmt)
    return buf.getvalue()


NOISE = (np.random.default_rng(0).random((40, 40, 3)) * 255).astype(np.uint8)


@pytest.mark.parametrize('name, array, value', [
    ('grey.png', np.full((6, 5), 7, np.uint8), 7),
    ('rgba.png', np.dstack([np.full((8, 8, 3), 100, np.uint8), np.full((8, 8), 30, np.uint8)]), 100),
    ('grey16.png', np.full((8, 8), 40000, np.uint16), 40000 >> 8),  # 16-bit: scaled to 8 bits
    ('one_pixel.png', np.full((1, 1, 3), 200, np.uint8), 200),
    ('one_row.png', np.full((1, 7, 3), 9, np.uint8), 9),
])
def test_unusual_images_become_three_channel_crops(tmp_path, name, array, value):
    out = demo_pipeline()(dict(img_path=save(tmp_path / name, array)))
    assert out['inputs'].shape == (3, 32, 32)  # RandomResizedCrop to the demo's 32x32, channels first
    assert (out['inputs'] == value).all()  # a flat image stays flat: the pixels were read, not invented


@pytest.mark.parametrize('mode', ['P', 'CMYK'])
def test_palette_and_cmyk_images_load_as_rgb(tmp_path, mode):
    rgb = np.zeros((6, 8, 3), np.uint8)
    rgb[:, :4] = (255, 0, 0)
    rgb[:, 4:] = (0, 0, 255)
    path = str(tmp_path / ('img.png' if mode == 'P' else 'img.jpg'))  # CMYK: a JPEG
    Image.fromarray(rgb).convert(mode).save(path)
    img = CheckedLoadImageFromFile()(dict(img_path=path))['img']  # BGR, as mmcv loads
    assert img.shape == (6, 8, 3) and img.dtype == np.uint8
    assert np.abs(img[:, :4].astype(int) - (0, 0, 255)).max() <= 12  # red
    assert np.abs(img[:, 4:].astype(int) - (255, 0, 0)).max() <= 12  # blue


def test_grey_image_loads_as_three_equal_channels(tmp_path):
    grey = (np.arange(48, dtype=np.uint8) * 5).reshape(6, 8)
    img = CheckedLoadImageFromFile()(dict(img_path=save(tmp_path / 'g.png', grey)))['img']
    assert img.shape == (6, 8, 3) and img.dtype == np.uint8
    for c in range(3):
        assert np.array_equal(img[..., c], grey)


@pytest.mark.parametrize('case, reason', [
    ('truncated.jpg', r'decoder cannot read it \(truncated, corrupt or not an image\)'),
    ('truncated.png', r'decoder cannot read it'),
    ('garbage.jpg', r'decoder cannot read it'),
    ('text.png', r'decoder cannot read it'),
    ('empty.jpg', r'the file is empty \(0 bytes\)'),
    ('missing.jpg', r'the file does not exist'),
])
def test_unreadable_images_raise_an_error_naming_the_file(tmp_path, case, reason):
    path = str(tmp_path / case)
    content = {
        'truncated.jpg': encoded(NOISE, 'JPEG')[:-300],
        'truncated.png': encoded(NOISE, 'PNG')[:2000],
        'garbage.jpg': np.random.default_rng(1).bytes(3000),
        'text.png': b'this is not an image\n',
        'empty.jpg': b'',
    }.get(case)
    if content is not None:
        with open(path, 'wb') as f:
            f.write(content)
    with pytest.raises(ImageLoadError, match=rf'Cannot load image {path}.*{reason}'):
        demo_pipeline()(dict(img_path=path))


def test_pillow_backend_errors_name_the_file(tmp_path):
    path = str(tmp_path / 'truncated.jpg')
    with open(path, 'wb') as f:
        f.write(encoded(NOISE, 'JPEG')[:800])
    with pytest.raises(ImageLoadError, match=rf'Cannot load image {path} \(800 bytes\): OSError: .*truncated'):
        CheckedLoadImageFromFile(imdecode_backend='pillow')(dict(img_path=path))


def test_ignore_empty_returns_none_as_in_mmcv(tmp_path):
    path = str(tmp_path / 'empty.jpg')
    open(path, 'wb').close()
    assert CheckedLoadImageFromFile(ignore_empty=True)(dict(img_path=path)) is None


def copy_demo(demo_data: str, dst) -> str:
    shutil.copytree(demo_data, dst)
    return str(dst)


def test_empty_class_folder(demo_data, tmp_path):
    """An empty class folder adds no samples (mmpretrain logs a warning naming it); no folder at all raises."""
    from mmpretrain.datasets import CustomDataset
    root = copy_demo(demo_data, tmp_path / 'data')
    os.makedirs(osp.join(root, 'train', 'zz_empty'))
    unlabelled = CustomDataset(data_root=root, data_prefix='train', with_label=False, pipeline=[])
    assert len(unlabelled) == 32  # 4 classes x 8 images
    labelled = CustomDataset(data_root=root, data_prefix='train', pipeline=[])
    assert len(labelled) == 32 and labelled.CLASSES[-1] == 'zz_empty'
    with pytest.raises(RuntimeError, match='Found 0 files in subfolders of'):
        CustomDataset(data_root=root, data_prefix='train/zz_empty', pipeline=[])


@pytest.mark.parametrize('launch', ['main-process-data', 'two-workers', 'two-ranks'])
def test_training_on_a_corrupt_image_stops_with_its_name(demo_data, tmp_path, launch):
    """The error reaches the training process from the data-loader workers, and with tools/dist_train.sh
    torchrun stops the other rank (which would otherwise wait in the gradient all-reduce); nothing hangs."""
    root = copy_demo(demo_data, tmp_path / 'data')
    bad = osp.join(root, 'train', 'disc', sorted(os.listdir(osp.join(root, 'train', 'disc')))[3])
    with open(bad, 'r+b') as f:
        f.truncate(osp.getsize(bad) // 2)
    work = str(tmp_path / 'work')
    workers = 0 if launch == 'main-process-data' else 2
    options = ['--work-dir', work, *tiny_run_options(root, epochs=1), f'train_dataloader.num_workers={workers}']
    if launch == 'two-ranks':
        cmd = ['bash', osp.join(REPO, 'tools/dist_train.sh'), DEMO, '2', *options]
        env = dict(env_with_venv(), PORT=str(free_port()))
    else:
        cmd, env = [sys.executable, osp.join(REPO, 'tools/train.py'), DEMO, *options], env_with_venv()
    proc = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert f'ImageLoadError: Cannot load image {bad}' in out, out[-3000:]
    assert not osp.exists(osp.join(work, 'epoch_1.pth'))
