"""Checkpoints load with weights_only=True on every path the project uses; bad files give clear errors."""
import glob
import io
import os
import os.path as osp
import pickle
import re
import zipfile

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner import CheckpointLoader, Runner, load_checkpoint
from mmpretrain.registry import MODELS
from PIL import Image

import saim_mm  # noqa: F401
from saim_mm.checkpoint import CheckpointLoadError, checkpoint_safe_globals, load_checkpoint_file
from saim_mm.checkpoint.safe_globals import statistics_method_getattr
from tests.conftest import REPO, build_tiny_saim, demo_train_cfg, tiny_saim_cfg


class Payload:
    """Unpickling this runs a shell command (creates ``marker``): what a malicious checkpoint does."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'touch {self.marker}',)


@pytest.fixture
def evil(tmp_path):
    """(path of a torch.save checkpoint with a code-running payload, path of the marker it would create)."""
    marker = str(tmp_path / 'pwned')
    path = str(tmp_path / 'evil.pth')
    torch.save({'state_dict': build_tiny_saim().state_dict(), 'meta': {}, 'hook': Payload(marker)}, path)
    return path, marker


@pytest.fixture(scope='module')
def real_checkpoint(demo_data, tmp_path_factory) -> str:
    """A resume checkpoint written by the demo config (message hub, optimiser, scheduler, meta)."""
    work = str(tmp_path_factory.mktemp('ckpt_work'))
    Runner.from_cfg(demo_train_cfg(demo_data, work, epochs=1)).train()
    return osp.join(work, 'epoch_1.pth')


def refused(path: str) -> str:
    return rf'Refusing to load checkpoint {re.escape(path)}: it references posix.system, which is not on the ' \
           r'weights-only allow-list'


def test_malicious_checkpoint_is_refused_on_every_loading_path(evil, monkeypatch, demo_data, tmp_path):
    path, marker = evil
    # TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD turns weights_only off where a caller does not pass it; saim_mm passes it
    monkeypatch.setenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')
    with pytest.raises(CheckpointLoadError, match=refused(path)):
        load_checkpoint_file(path)
    with pytest.raises(CheckpointLoadError, match=refused(path)):  # mmengine's loader (load_from, resume)
        CheckpointLoader.load_checkpoint(path, map_location='cpu')
    with pytest.raises(CheckpointLoadError, match=refused(path)):  # tools/test.py, init_model, small_study
        load_checkpoint(build_tiny_saim(), path, map_location='cpu')
    pretrained = MODELS.build({**tiny_saim_cfg(), 'init_cfg': dict(type='Pretrained', checkpoint=path)})
    with pytest.raises(CheckpointLoadError, match=refused(path)):  # fine-tuning: init_cfg=Pretrained
        pretrained.init_weights()
    runner = Runner.from_cfg(demo_train_cfg(demo_data, str(tmp_path / 'work'), resume=True, load_from=path))
    with pytest.raises(CheckpointLoadError, match=refused(path)):  # tools/train.py --resume PATH
        runner.train()
    assert not osp.exists(marker)

    # the payload is live: an unsafe load runs it (this is what the refusals above prevent)
    monkeypatch.delenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD')
    torch.load(path, weights_only=False)
    assert osp.exists(marker)


def test_malicious_legacy_format_and_plain_pickle_are_refused(tmp_path):
    marker = str(tmp_path / 'pwned')
    legacy, plain = str(tmp_path / 'legacy.pth'), str(tmp_path / 'plain.pth')
    torch.save({'x': Payload(marker)}, legacy, _use_new_zipfile_serialization=False)
    with open(plain, 'wb') as f:
        pickle.dump({'x': Payload(marker)}, f, protocol=2)
    with pytest.raises(CheckpointLoadError, match=refused(legacy)):
        load_checkpoint_file(legacy)
    with pytest.raises(CheckpointLoadError, match=rf'{plain}: it is not a PyTorch checkpoint .* but a plain pickle'):
        load_checkpoint_file(plain)
    assert not osp.exists(marker)


def png_bytes() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(buf, 'PNG')
    return buf.getvalue()


def npy_bytes() -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.zeros(3))
    return buf.getvalue()


def zip_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, 'w') as z:
        z.writestr('readme.txt', 'not a checkpoint')
    return buf.getvalue()


@pytest.mark.parametrize('case, message', [
    ('empty', r'the file is empty \(0 bytes\)'),
    ('truncated', r'\(\d+ bytes\): the file is truncated or corrupt \(RuntimeError: '),
    ('png', r'it is not a PyTorch checkpoint \(torch.save file\) but a PNG image'),
    ('npy', r'but a numpy .npy file'),
    ('config', r'but a text file'),
    ('zip', r'the file is truncated or corrupt'),
])
def test_truncated_or_foreign_files_give_a_clear_error(real_checkpoint, tmp_path, case, message):
    data = open(real_checkpoint, 'rb').read()
    content = {
        'empty': b'',
        'truncated': data[:len(data) // 2],
        'png': png_bytes(),
        'npy': npy_bytes(),
        'config': open(osp.join(REPO, 'configs/saim/demo_cpu.py'), 'rb').read(),
        'zip': zip_bytes(),
    }[case]
    path = str(tmp_path / f'{case}.pth')
    with open(path, 'wb') as f:
        f.write(content)
    with pytest.raises(CheckpointLoadError, match=rf'checkpoint {re.escape(path)}.*{message}'):
        load_checkpoint_file(path)
    with pytest.raises(CheckpointLoadError, match=re.escape(path)):  # the same through mmengine
        load_checkpoint(build_tiny_saim(), path, map_location='cpu')


def test_missing_file():
    with pytest.raises(FileNotFoundError, match='Checkpoint /no/such/epoch_1.pth does not exist'):
        load_checkpoint_file('/no/such/epoch_1.pth')


def test_real_checkpoint_loads_weights_only_with_the_allow_list(real_checkpoint):
    ckpt = load_checkpoint_file(real_checkpoint, map_location='cpu')
    assert {'meta', 'state_dict', 'message_hub', 'optimizer', 'param_schedulers'} <= set(ckpt)
    assert isinstance(ckpt['message_hub']['log_scalars']['train/loss'], HistoryBuffer)


def test_every_allow_listed_global_is_needed(real_checkpoint):
    """The allow-list holds the types mmengine checkpoints contain; dropping any of them breaks loading.

    (The numpy dtype classes of the other numeric types are allowed for numpy values of those types in the
    message hub; like float64's they are plain data.)
    """
    needed = [HistoryBuffer, (statistics_method_getattr, 'builtins.getattr'), np.core.multiarray._reconstruct,
              np.core.multiarray.scalar, np.ndarray, np.dtype, type(np.dtype('float64'))]
    assert all(g in checkpoint_safe_globals() for g in needed)
    try:
        for dropped in needed:
            torch.serialization.clear_safe_globals()
            torch.serialization.add_safe_globals([g for g in checkpoint_safe_globals() if g != dropped])
            with pytest.raises(CheckpointLoadError, match='not on the weights-only allow-list'):
                load_checkpoint_file(real_checkpoint)
    finally:
        torch.serialization.clear_safe_globals()
        saim_mm.register_checkpoint_safe_globals()
    load_checkpoint_file(real_checkpoint)


class Attribute:
    """Unpickles as ``getattr(obj, name)``: how a crafted file would reach objects beyond the allow-list."""

    def __init__(self, obj, name: str) -> None:
        self.obj, self.name = obj, name

    def __reduce__(self):
        return getattr, (self.obj, self.name)


@pytest.mark.parametrize('obj, name', [(HistoryBuffer, '__init__'), (np.ndarray, 'tofile'), (getattr, '__self__')])
def test_getattr_in_a_checkpoint_reaches_only_history_buffer_statistics(tmp_path, obj, name):
    path = str(tmp_path / 'crafted.pth')
    torch.save({'ok': Attribute(HistoryBuffer, 'mean'), 'bad': Attribute(obj, name)}, path)
    expected = rf'getattr\(.*, {name!r}\)'  # (builtins.getattr itself unpickles as saim_mm's restricted one)
    with pytest.raises(CheckpointLoadError, match=rf'Refusing to load checkpoint {path}: it references {expected}, '
                                                  'which is not on the weights-only allow-list'):
        load_checkpoint_file(path)
    torch.save({'ok': Attribute(HistoryBuffer, 'mean')}, path)
    assert load_checkpoint_file(path)['ok'] is HistoryBuffer.mean


def test_project_sources_load_checkpoints_only_weights_only():
    """Every torch.load in the package and the tools passes weights_only=True (mmengine's loaders are
    replaced by saim_mm's); nothing sets weights_only=False."""
    sources = glob.glob(osp.join(REPO, 'saim_mm', '**', '*.py'), recursive=True) + \
        glob.glob(osp.join(REPO, 'tools', '**', '*.py'), recursive=True)
    calls = 0
    for path in sources:
        text = open(path).read()
        assert not re.search(r'weights_only\s*=\s*False\s*[,)]', text), path
        for call in re.findall(r'torch\.load\(([^)]*)\)', text):
            calls += 1
            assert 'weights_only=True' in call, f'{path}: torch.load({call}) without weights_only=True'
    assert calls >= 1
    assert CheckpointLoader._schemes[''].__module__ == 'saim_mm.checkpoint.io'
