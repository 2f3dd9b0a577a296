"""Reading and writing checkpoint files: weights-only loading with clear errors, state-dict files.

Every ``torch.save`` file is read with ``torch.load(weights_only=True)`` (:func:`load_checkpoint_file`);
types outside the allow-list of :mod:`.safe_globals` are refused, so a crafted file cannot run code.
A file that is missing, empty, truncated or of another format gets an error that names it and says what
is wrong with it.

mmengine loads local checkpoints (``resume``, ``load_from``, ``init_cfg=dict(type='Pretrained')``) with
its ``load_from_local``, which calls ``torch.load`` without ``weights_only`` (so the environment variable
``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` would switch the safety off) and lets a truncated or foreign file fail
deep inside the unpickler. :func:`register_checkpoint_loader` replaces it with
:func:`load_from_local_weights_only`.
"""
import argparse
import os.path as osp
import pickle
import re
from contextlib import nullcontext
from typing import Any, Callable, List, Mapping, Optional, Tuple, Union

import torch
from mmengine.runner.checkpoint import CheckpointLoader
from torch import Tensor

from .errors import CheckpointLoadError, CheckpointNotFoundError, ConversionError
from .schema import StateDict

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
CONTAINER_KEYS = ('state_dict', 'model', 'module')  # where checkpoints keep their weights, in this order
MapLocation = Optional[Union[str, Callable, torch.device]]


def require_file(filename: str) -> str:
    """``filename`` with ``~`` expanded.

    Raises:
        CheckpointNotFoundError: it is not a file.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise CheckpointNotFoundError(f'Checkpoint {filename} does not exist.')
    return filename


def _describe_format(head: bytes) -> str:
    """What a file starting with ``head`` is, in words (for error messages)."""
    for magic, name in KNOWN_FORMATS.items():
        if head.startswith(magic):
            return name
    if head and all(32 <= b < 127 or b in b'\t\r\n' for b in head):
        return 'a text file'
    return f'an unknown format (first bytes {head[:8]!r})'


def load_checkpoint_file(filename: str, map_location: MapLocation = None) -> Any:
    """``torch.load(filename, weights_only=True)`` with errors that name the file and the problem.

    Args:
        filename (str): Path of a file written by ``torch.save`` (zip or legacy format).
        map_location: As for :func:`torch.load`.

    Returns:
        The loaded object (for mmengine checkpoints a dict with ``meta``, ``state_dict``, ...).

    Raises:
        CheckpointNotFoundError: ``filename`` is not a file (a ``FileNotFoundError``).
        CheckpointLoadError: the file is empty, truncated, corrupt, not a PyTorch checkpoint, or references
            a type outside the weights-only allow-list (it could run code when unpickled).
    """
    filename = require_file(filename)
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


def load_safetensors_file(path: str) -> StateDict:
    """The tensors of a ``.safetensors`` file (which holds nothing but tensors and cannot run code).

    Raises:
        CheckpointNotFoundError: ``path`` is not a file.
        CheckpointLoadError: the file is not valid ``.safetensors``.
    """
    path = require_file(path)
    from safetensors import SafetensorError
    from safetensors.torch import load_file
    try:
        return dict(load_file(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointLoadError(f'Cannot load {path}: not a valid .safetensors file ({err}).') from None


def load_state_dict_file(path: str, allow_namespace: bool = False) -> Tuple[StateDict, List[str]]:
    """Read the weights of a checkpoint file (``weights_only=True``) or a ``.safetensors`` file.

    Args:
        path (str): ``.pth``/``.pt``/``.bin`` written by ``torch.save`` or ``.safetensors``.
        allow_namespace (bool): also allow ``argparse.Namespace`` objects in the file (the ``args`` entry of
            checkpoints written by MAE-style training scripts such as the authors'); it is plain data.

    Returns:
        tuple: the state dict (taken from a ``state_dict``, ``model`` or ``module`` entry when there is one)
        and the names of the other top-level entries.

    Raises:
        CheckpointNotFoundError, CheckpointLoadError: the file is missing, is not a checkpoint or is refused.
        ConversionError: the file holds no tensors.
    """
    if path.endswith('.safetensors'):
        return load_safetensors_file(path), []
    allowed = torch.serialization.safe_globals([argparse.Namespace]) if allow_namespace else nullcontext()
    with allowed:
        obj = load_checkpoint_file(path, map_location='cpu')
    if not isinstance(obj, Mapping):
        raise ConversionError(f'{path} holds a {type(obj).__name__}, not a state dict or checkpoint dict.')
    others: List[str] = []
    for key in CONTAINER_KEYS:
        if isinstance(obj.get(key), Mapping):
            others = [k for k in obj if k != key]
            obj = obj[key]
            break
    weights = {k: v for k, v in obj.items() if isinstance(v, Tensor)}
    if not weights:
        raise ConversionError(f'{path} holds no tensors (top-level keys: {sorted(map(str, obj))[:10]}); '
                              'expected a state dict or a checkpoint with a state_dict/model entry.')
    others += [f'{k} (not a tensor)' for k, v in obj.items() if not isinstance(v, Tensor)]
    return weights, others


def save_state_dict_file(state_dict: Mapping[str, Tensor], path: str, meta: Optional[dict] = None,
                         wrap: bool = True) -> None:
    """Write ``state_dict`` as ``.safetensors`` (flat, ``meta`` as string metadata) or with ``torch.save``.

    Args:
        state_dict (dict): the tensors.
        path (str): output file; a ``.safetensors`` suffix selects that format.
        meta (dict, optional): what the file was made from (architecture, source path, ...).
        wrap (bool): for ``torch.save`` output, write an mmengine checkpoint ``{'state_dict', 'meta'}``;
            ``False`` writes the bare state dict (what timm's ``load_state_dict`` takes) and no ``meta``.
    """
    if path.endswith('.safetensors'):
        from safetensors.torch import save_file
        save_file({k: v.detach().contiguous().clone() for k, v in state_dict.items()}, path,
                  metadata={k: str(v) for k, v in (meta or {}).items()})
    elif wrap:
        torch.save({'state_dict': state_dict, 'meta': meta or {}}, path)
    else:
        torch.save(state_dict, path)


def load_from_local_weights_only(filename: str, map_location: MapLocation = None) -> Any:
    """mmengine ``CheckpointLoader`` scheme for local paths: :func:`.layouts.load_any_layout` (weights-only
    reading, ``.safetensors`` too, known layouts converted to saim_mm's)."""
    from .layouts import load_any_layout
    return load_any_layout(filename, map_location=map_location)


def register_checkpoint_loader() -> None:
    """Make mmengine load every local checkpoint with :func:`load_from_local_weights_only`, and build
    ``type='Pretrained'`` init_cfgs as :class:`.LayoutPretrainedInit` (idempotent)."""
    CheckpointLoader.register_scheme(prefixes='', loader=load_from_local_weights_only, force=True)
    from .pretrained_init import register_pretrained_init
    register_pretrained_init()
