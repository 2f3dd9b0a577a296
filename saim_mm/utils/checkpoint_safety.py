"""Load mmengine checkpoints with ``torch.load(weights_only=True)`` (the torch >= 2.6 default).

mmengine's resume checkpoints hold, besides tensors, the message hub's ``HistoryBuffer`` objects and numpy
scalars/arrays, which the weights-only unpickler refuses. Instead of switching the safety off, saim_mm
allow-lists exactly those types. ``builtins.getattr`` is needed because a ``HistoryBuffer`` stores its
statistics methods, which pickle as ``getattr(HistoryBuffer, 'min')``; the weights-only unpickler still
calls nothing that is not on the list, so getattr can only reach attributes of allow-listed objects.
"""
import builtins
from typing import List

import numpy as np
import torch
from mmengine.logging import HistoryBuffer

NUMPY_DTYPES = ('bool', 'int8', 'int16', 'int32', 'int64', 'uint8', 'uint16', 'uint32', 'uint64', 'float16',
                'float32', 'float64')


def checkpoint_safe_globals() -> List[object]:
    """The globals an mmengine/saim_mm checkpoint may reference."""
    return [
        HistoryBuffer,
        builtins.getattr,
        np.core.multiarray._reconstruct,
        np.core.multiarray.scalar,
        np.ndarray,
        np.dtype,
        *(type(np.dtype(name)) for name in NUMPY_DTYPES),
    ]


def register_checkpoint_safe_globals() -> None:
    """Add :func:`checkpoint_safe_globals` to torch's weights-only allow-list (idempotent)."""
    torch.serialization.add_safe_globals(checkpoint_safe_globals())
