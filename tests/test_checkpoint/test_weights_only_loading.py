"""Checkpoints load weights-only on every path the project uses; bad files give clear errors."""
import glob
import io
import os
import os.path as osp
import pickle
import re
import runpy
import sys
import zipfile

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer
from mmengine.config import Config
from mmengine.runner import CheckpointLoader, Runner, load_checkpoint
from mmengine.runner.checkpoint import load_from_local
from mmpretrain import get_model
from mmpretrain.registry import MODELS
from PIL import Image

import saim_mm  # noqa: F401
from saim_mm.checkpoint import (CheckpointLoadError, checkpoint_safe_globals, load_checkpoint_file,
                                load_state_dict_file, statistics_method_getattr)
from saim_mm.checkpoint import io as checkpoint_io
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
    return rf'(?s)Refusing to load checkpoint {re.escape(path)}: it references a type or function that is not on the ' \
        r'weights-only allow-list .*posix.system'


def run_main(script: str, *args) -> None:
    """``main()`` of a script under tools/ in this process, with ``args`` as its command line."""
    argv = sys.argv
    sys.argv = [script, *map(str, args)]
    try:
        runpy.run_path(osp.join(REPO, 'tools', script), run_name='__main__')
    finally:
        sys.argv = argv


def test_malicious_checkpoint_is_refused_on_every_loading_path(evil, monkeypatch, demo_data, tmp_path):
    """A file whose unpickling would run ``os.system`` is refused, and its marker never created, by:

    - saim_mm's readers (``load_checkpoint_file``, ``load_state_dict_file``), even with
      ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` (they pass ``weights_only=True``);
    - ``init_cfg=dict(type='Pretrained')`` on ``SAIMViT`` (which reads local files with those readers);
    - the converter tools (``saim2backbone.py``, ``saim2timm.py``, ``official2saim.py``);
    - mmengine's loader, which saim_mm leaves as it is and torch loads weights-only by default:
      ``load_from`` via ``Runner`` and ``load_checkpoint`` (``tools/test.py``), ``get_model(pretrained=)``,
      ``init_cfg=Pretrained`` on ``SAIM`` (mmengine's ``PretrainedInit``);
    - resume through saim_mm's runner (``tools/train.py --resume PATH``, with the allow-list context it adds).
    """
    path, marker = evil
    with monkeypatch.context() as env:
        env.setenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')  # turns weights_only off where a caller leaves it unset
        for read in (load_checkpoint_file, load_state_dict_file):
            with pytest.raises(CheckpointLoadError, match=refused(path)):
                read(path)
        vit = MODELS.build({**tiny_saim_cfg()['backbone'], 'init_cfg': dict(type='Pretrained', checkpoint=path)})
        with pytest.raises(CheckpointLoadError, match=refused(path)):
            vit.init_weights()
        for tool in ('saim2backbone.py', 'saim2timm.py', 'official2saim.py'):
            with pytest.raises(CheckpointLoadError, match=refused(path)):
                run_main(osp.join('model_converters', tool), path, tmp_path / 'out.pth')
    unsafe = r'(?s)Weights only load failed.*posix.system'
    with pytest.raises(pickle.UnpicklingError, match=unsafe):  # mmengine's loader (load_from, resume)
        CheckpointLoader.load_checkpoint(path, map_location='cpu')
    with pytest.raises(pickle.UnpicklingError, match=unsafe):  # tools/test.py, init_model
        load_checkpoint(build_tiny_saim(), path, map_location='cpu')
    with pytest.raises(pickle.UnpicklingError, match=unsafe):
        get_model(Config(dict(model=tiny_saim_cfg())), pretrained=path)
    pretrained = MODELS.build({**tiny_saim_cfg(), 'init_cfg': dict(type='Pretrained', checkpoint=path)})
    with pytest.raises(pickle.UnpicklingError, match=unsafe):
        pretrained.init_weights()
    runner = Runner.from_cfg(demo_train_cfg(demo_data, str(tmp_path / 'work'), load_from=path))
    with pytest.raises(pickle.UnpicklingError, match=unsafe):  # load_from via Runner
        runner.train()
    with pytest.raises(pickle.UnpicklingError, match=unsafe):  # tools/train.py --resume PATH
        run_main('train.py', osp.join(REPO, 'configs/saim/demo_cpu.py'), '--work-dir', tmp_path / 'work2',
                 '--resume', path, '--cfg-options', f'train_dataloader.dataset.data_root={demo_data}',
                 'train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False')
    assert not osp.exists(marker)

    # the payload is live: an unsafe load runs it (this is what the refusals above prevent)
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
    vit = MODELS.build({**tiny_saim_cfg()['backbone'], 'init_cfg': dict(type='Pretrained', checkpoint=path)})
    with pytest.raises(CheckpointLoadError, match=re.escape(path)):  # the same for a ViT's Pretrained file
        vit.init_weights()


def test_missing_file():
    with pytest.raises(FileNotFoundError, match='Checkpoint /no/such/epoch_1.pth does not exist'):
        load_checkpoint_file('/no/such/epoch_1.pth')


def test_real_checkpoint_loads_weights_only_with_the_allow_list(real_checkpoint):
    ckpt = load_checkpoint_file(real_checkpoint, map_location='cpu')
    assert {'meta', 'state_dict', 'message_hub', 'optimizer', 'param_schedulers'} <= set(ckpt)
    assert isinstance(ckpt['message_hub']['log_scalars']['train/loss'], HistoryBuffer)


def test_every_allow_listed_global_is_needed(real_checkpoint, monkeypatch):
    """The allow-list holds the types mmengine checkpoints contain; dropping any of them breaks loading.

    (The numpy dtype classes of the other numeric types are allowed for numpy values of those types in the
    message hub; like float64's they are plain data.)
    """
    needed = [HistoryBuffer, (statistics_method_getattr, 'builtins.getattr'), np.core.multiarray._reconstruct,
              np.core.multiarray.scalar, np.ndarray, np.dtype, type(np.dtype('float64'))]
    full = checkpoint_safe_globals()
    assert all(g in full for g in needed)
    for dropped in needed:
        monkeypatch.setattr(checkpoint_io, 'checkpoint_safe_globals', lambda: [g for g in full if g != dropped])
        with pytest.raises(CheckpointLoadError, match='not on the weights-only allow-list'):
            load_checkpoint_file(real_checkpoint)
    monkeypatch.undo()
    load_checkpoint_file(real_checkpoint)


def test_saim_mm_runner_resumes_a_real_checkpoint_that_mmengine_alone_refuses(real_checkpoint):
    """mmengine's own checkpoints need the allow-list; import saim_mm does not register it for the process
    (tools/train.py and tools/test.py apply it as a context)."""
    with pytest.raises(pickle.UnpicklingError, match='HistoryBuffer'):
        load_from_local(real_checkpoint, map_location='cpu')
    with torch.serialization.safe_globals(checkpoint_safe_globals()):
        assert isinstance(load_from_local(real_checkpoint, 'cpu')['message_hub']['log_scalars']['train/loss'],
                          HistoryBuffer)


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
    expected = rf'getattr\(.*, {name!r}\) is not allowed'  # (builtins.getattr unpickles as saim_mm's restricted one)
    with pytest.raises(CheckpointLoadError, match=rf'(?s)Refusing to load checkpoint {path}: .* not on the '
                                                  rf'weights-only allow-list .*{expected}'):
        load_checkpoint_file(path)
    torch.save({'ok': Attribute(HistoryBuffer, 'mean')}, path)
    assert load_checkpoint_file(path)['ok'] is HistoryBuffer.mean


def test_project_sources_load_checkpoints_only_weights_only():
    """Every torch.load in the package and the tools passes weights_only=True; nothing sets
    weights_only=False; mmengine's own local loader stays in place (torch's weights-only default)."""
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
    assert CheckpointLoader._schemes[''] is load_from_local
