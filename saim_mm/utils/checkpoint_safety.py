"""Load checkpoints with ``torch.load(weights_only=True)`` and clear errors.

mmengine's resume checkpoints hold, besides tensors, the message hub's ``HistoryBuffer`` objects and numpy
scalars/arrays, which the weights-only unpickler refuses. Instead of switching the safety off, saim_mm
allow-lists exactly those types. A ``HistoryBuffer`` also pickles its statistics methods as
``getattr(HistoryBuffer, 'mean')`` (and on loading installs them on the class, where mmengine's logger
calls them). Allow-listing the real ``builtins.getattr`` would let a crafted file walk from an allowed
object to any attribute (``getattr(getattr, '__self__')`` is the builtins module) and plant it there, so
the name ``builtins.getattr`` is bound to :func:`statistics_method_getattr`, which returns only those
four methods.

mmengine loads local checkpoints (``resume``, ``load_from``, ``init_cfg=dict(type='Pretrained')``) with
its ``load_from_local``, which calls ``torch.load`` without ``weights_only`` (so the environment variable
``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` would switch the safety off) and lets a truncated or foreign file fail
deep inside the unpickler. :func:`register_checkpoint_loader` replaces it with
:func:`load_from_local_weights_only`, which always passes ``weights_only=True`` and turns every failure into
a :class:`CheckpointLoadError` that names the file and says what is wrong with it.
"""
import os.path as osp
import pickle
import re
from typing import Any, Callable, List, Optional, Union

import numpy as np
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader

NUMPY_DTYPES = ('bool', 'int8', 'int16', 'int32', 'int64', 'uint8', 'uint16', 'uint32', 'uint64', 'float16',
                'float32', 'float64')
ZIP_MAGIC = b'PK\x03\x04'  # torch.save's default (zip) format
LEGACY_MAGIC = b'\x80\x02\x8a\x0a'  # torch.save(..., _use_new_zipfile_serialization=False): pickled magic number
KNOWN_FORMATS = {
    b'\xff\xd8\xff': 'a JPEG image',
    b'\x89PNG': 'a PNG image',
    b'\x93NUMPY': 'a numpy .npy file',
    b'\x80\x02': 'a plain pickle (not written by torch.save)',
    b'\x80\x03': 'a plain pickle (not written by torch.save)',
    b'\x80\x04': 'a plain pickle (not written by torch.save)',
    b'\x80\x05': 'a plain pickle (not written by torch.save)',
}

# what the weights-only unpickler (and statistics_method_getattr) say when a file uses something not allowed
REFUSALS = (r'GLOBAL ([\w.]+)', r"but got <class '([\w.]+)'>", r'reduce for unrecognized function (\S+)',
            r'(getattr\(.*?\)) is not allowed')


class CheckpointLoadError(RuntimeError):
    """A checkpoint file that cannot (or must not) be loaded; the message names the file and the reason."""


HISTORY_BUFFER_STATISTICS = ('min', 'max', 'current', 'mean')  # HistoryBuffer._set_default_statistics


def statistics_method_getattr(obj: Any, name: str) -> Callable:
    """``getattr`` as a checkpoint may use it: only ``HistoryBuffer``'s default statistics methods."""
    if obj is not HistoryBuffer or name not in HISTORY_BUFFER_STATISTICS:
        raise pickle.UnpicklingError(f'getattr({obj!r}, {name!r}) is not allowed: checkpoints may only use '
                                     f'getattr(HistoryBuffer, name) with name in {HISTORY_BUFFER_STATISTICS}')
    return getattr(obj, name)


def checkpoint_safe_globals() -> List[object]:
    """The globals an mmengine/saim_mm checkpoint may reference (in ``add_safe_globals`` form)."""
    return [
        HistoryBuffer,
        (statistics_method_getattr, 'builtins.getattr'),
        np.core.multiarray._reconstruct,
        np.core.multiarray.scalar,
        np.ndarray,
        np.dtype,
        *(type(np.dtype(name)) for name in NUMPY_DTYPES),
    ]


def register_checkpoint_safe_globals() -> None:
    """Add :func:`checkpoint_safe_globals` to torch's weights-only allow-list (idempotent)."""
    torch.serialization.add_safe_globals(checkpoint_safe_globals())


def _describe_format(head: bytes) -> str:
    for magic, name in KNOWN_FORMATS.items():
        if head.startswith(magic):
            return name
    if head and all(32 <= b < 127 or b in b'\t\r\n' for b in head):
        return 'a text file'
    return f'an unknown format (first bytes {head[:8]!r})'


def load_checkpoint_file(filename: str, map_location: Optional[Union[str, Callable, torch.device]] = None) -> Any:
    """``torch.load(filename, weights_only=True)`` with errors that name the file and the problem.

    Args:
        filename (str): Path of a file written by ``torch.save`` (zip or legacy format).
        map_location: As for :func:`torch.load`.

    Returns:
        The loaded object (for mmengine checkpoints a dict with ``meta``, ``state_dict``, ...).

    Raises:
        FileNotFoundError: ``filename`` is not a file.
        CheckpointLoadError: the file is empty, truncated, corrupt, not a PyTorch checkpoint, or references
            a type outside the weights-only allow-list (it could run code when unpickled).
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'Checkpoint {filename} does not exist.')
    size = osp.getsize(filename)
    if size == 0:
        raise CheckpointLoadError(f'Cannot load checkpoint {filename}: the file is empty (0 bytes); it was '
                                  'probably cut off while being written.')
    with open(filename, 'rb') as f:
        head = f.read(16)
    if not head.startswith((ZIP_MAGIC, LEGACY_MAGIC)):
        raise CheckpointLoadError(f'Cannot load checkpoint {filename}: it is not a PyTorch checkpoint '
                                  f'(torch.save file) but {_describe_format(head)}.')
    try:
        return torch.load(filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        refused = [m for m in (re.search(p, str(err)) for p in REFUSALS) if m]
        if refused:
            raise CheckpointLoadError(
                f'Refusing to load checkpoint {filename}: it references {refused[0].group(1)}, which is not on '
                'the weights-only allow-list (unpickling it could run arbitrary code). saim_mm never loads '
                'checkpoints with weights_only=False; if you trust the file and the type is plain data, '
                'allow it with torch.serialization.add_safe_globals.') from None
        detail = str(err).split('WeightsUnpickler error:')[-1].split('Check the documentation')[0].strip()
        raise CheckpointLoadError(f'Cannot load checkpoint {filename} ({size} bytes): it is corrupt or not '
                                  f'a PyTorch checkpoint ({detail}).') from None
    except (RuntimeError, EOFError, ValueError, KeyError, OSError) as err:
        detail = str(err).split('. This is an internal miniz error')[0]
        raise CheckpointLoadError(f'Cannot load checkpoint {filename} ({size} bytes): the file is truncated '
                                  f'or corrupt ({type(err).__name__}: {detail}).') from None


def load_from_local_weights_only(filename: str, map_location=None) -> Any:
    """mmengine ``CheckpointLoader`` scheme for local paths: :func:`load_checkpoint_file`."""
    return load_checkpoint_file(filename, map_location=map_location)


def register_checkpoint_loader() -> None:
    """Make mmengine load every local checkpoint with :func:`load_from_local_weights_only` (idempotent)."""
    CheckpointLoader.register_scheme(prefixes='', loader=load_from_local_weights_only, force=True)
