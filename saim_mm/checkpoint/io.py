"""Checkpoint files: always ``torch.load(weights_only=True)``, errors that name the file and the problem.

:func:`checkpoint_safe_globals` (mmengine's ``HistoryBuffer``, numpy values) is applied as a context around
saim_mm's reads, never registered for the process. ``builtins.getattr`` (how a ``HistoryBuffer`` pickles its
statistics methods) is bound to :func:`statistics_method_getattr`: the real one reaches any attribute.
"""
import argparse
import os.path as osp
import pickle
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

import numpy as np
import torch
from mmengine.logging import HistoryBuffer
from torch import Tensor

from .errors import CheckpointLoadError, CheckpointNotFoundError, ConversionError

StateDict = Dict[str, Tensor]
CONTAINER_KEYS = ('state_dict', 'model', 'module')  # where checkpoints keep their weights, in this order
TORCH_MAGIC = (b'PK\x03\x04', b'\x80\x02\x8a\x0a')  # torch.save's zip format; its legacy format
OTHER_FORMATS = {b'\xff\xd8\xff': 'a JPEG image', b'\x89PNG': 'a PNG image', b'\x93NUMPY': 'a numpy .npy file',
                 **{bytes([0x80, v]): 'a plain pickle (not written by torch.save)' for v in (2, 3, 4, 5)}}
NUMPY_DTYPES = 'bool int8 int16 int32 int64 uint8 uint16 uint32 uint64 float16 float32 float64'.split()
HISTORY_BUFFER_STATISTICS = ('min', 'max', 'current', 'mean')  # HistoryBuffer._set_default_statistics


def statistics_method_getattr(obj: Any, name: str) -> Callable:
    """``getattr`` as a checkpoint may use it: only ``HistoryBuffer``'s default statistics methods."""
    if obj is not HistoryBuffer or name not in HISTORY_BUFFER_STATISTICS:
        raise pickle.UnpicklingError(f'getattr({obj!r}, {name!r}) is not allowed: checkpoints may only use '
                                     f'getattr(HistoryBuffer, name) with name in {HISTORY_BUFFER_STATISTICS}')
    return getattr(obj, name)


def checkpoint_safe_globals() -> List[object]:
    """What an mmengine / saim_mm checkpoint may reference, for ``torch.serialization.safe_globals``."""
    return [HistoryBuffer, (statistics_method_getattr, 'builtins.getattr'), np.core.multiarray._reconstruct,
            np.core.multiarray.scalar, np.ndarray, np.dtype, *(type(np.dtype(name)) for name in NUMPY_DTYPES)]


def strip_prefix(state_dict: Mapping[str, Tensor], prefix: str) -> StateDict:
    """Remove ``prefix`` from every key that has it (e.g. ``'module.'`` of DistributedDataParallel)."""
    return {(k[len(prefix):] if k.startswith(prefix) else k): v for k, v in state_dict.items()}


def unwrap(checkpoint: Mapping) -> Tuple[Mapping, Optional[str]]:
    """The weights of a checkpoint dict and the entry that holds them (None: the dict itself)."""
    entry = next((k for k in CONTAINER_KEYS if isinstance(checkpoint.get(k), Mapping)), None)
    return (checkpoint[entry] if entry else checkpoint), entry


def require_file(filename: str) -> str:
    """``filename`` with ``~`` expanded; :class:`CheckpointNotFoundError` unless it is a file."""
    if not osp.isfile(filename := osp.expanduser(filename)):
        raise CheckpointNotFoundError(f'Checkpoint {filename} does not exist.')
    return filename


def load_checkpoint_file(filename: str, map_location: Any = None, allow: Tuple = ()) -> Any:
    """``torch.load(filename, weights_only=True)`` with :func:`checkpoint_safe_globals` (and ``allow``); a
    :class:`CheckpointLoadError` for a file that is empty, truncated, not a checkpoint or refused."""
    filename = require_file(filename)
    size = osp.getsize(filename)
    with open(filename, 'rb') as f:
        head = f.read(16)
    if not head.startswith(TORCH_MAGIC):
        kind = next((name for magic, name in OTHER_FORMATS.items() if head.startswith(magic)), None)
        text = head and all(32 <= b < 127 or b in b'\t\r\n' for b in head)
        kind = kind or ('a text file' if text else f'an unknown format (first bytes {head[:8]!r})')
        raise CheckpointLoadError(f'Cannot load checkpoint {filename}: ' + (
            'the file is empty (0 bytes); it was probably cut off while being written.' if size == 0 else
            f'it is not a PyTorch checkpoint (torch.save file) but {kind}.'))
    try:
        with torch.serialization.safe_globals(checkpoint_safe_globals() + list(allow)):
            return torch.load(filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:  # what the weights-only unpickler raises for anything it refuses
        raise CheckpointLoadError(
            f'Refusing to load checkpoint {filename}: it references a type or function that is not on the '
            'weights-only allow-list (unpickling it could run arbitrary code); saim_mm never loads with '
            f'weights_only=False. torch says: {err}') from None
    except (RuntimeError, EOFError, ValueError, KeyError, OSError) as err:
        raise CheckpointLoadError(f'Cannot load checkpoint {filename} ({size} bytes): the file is truncated '
                                  f'or corrupt ({type(err).__name__}: {err}).') from None


def load_state_dict_file(path: str, allow_namespace: bool = False) -> Tuple[StateDict, List[str]]:
    """The tensors of a ``torch.save`` (weights-only; from its ``state_dict``/``model``/``module`` entry if
    any) or ``.safetensors`` file, and its other entries. ``allow_namespace``: allow ``argparse.Namespace``
    (plain data: the ``args`` of MAE-style scripts' checkpoints such as the authors')."""
    if path.endswith('.safetensors'):
        from safetensors import SafetensorError, torch as safetensors_torch
        try:
            return dict(safetensors_torch.load_file(require_file(path))), []
        except (SafetensorError, ValueError) as err:
            raise CheckpointLoadError(f'Cannot load {path}: not a valid .safetensors file ({err}).') from None
    obj = load_checkpoint_file(path, map_location='cpu', allow=(argparse.Namespace, ) if allow_namespace else ())
    if not isinstance(obj, Mapping):
        raise ConversionError(f'{path} holds a {type(obj).__name__}, not a state dict or checkpoint dict.')
    obj, entry = unwrap(checkpoint := obj)
    others = [k for k in checkpoint if k != entry] if entry else []
    weights = {k: v for k, v in obj.items() if isinstance(v, Tensor)}
    if not weights:
        raise ConversionError(f'{path} holds no tensors (top-level keys: {sorted(map(str, obj))[:10]}); '
                              'expected a state dict or a checkpoint with a state_dict/model entry.')
    return weights, others + [f'{k} (not a tensor)' for k, v in obj.items() if not isinstance(v, Tensor)]


def save_state_dict_file(state_dict: Mapping[str, Tensor], path: str, meta: Optional[dict] = None,
                         wrap: bool = True) -> None:
    """Write ``.safetensors`` (``meta`` as metadata) or ``torch.save`` ``{'state_dict', 'meta'}`` (bare if not wrap)."""
    if path.endswith('.safetensors'):
        from safetensors.torch import save_file
        save_file({k: v.detach().contiguous().clone() for k, v in state_dict.items()}, path,
                  metadata={k: str(v) for k, v in (meta or {}).items()})
    else:
        torch.save({'state_dict': state_dict, 'meta': meta or {}} if wrap else state_dict, path)
