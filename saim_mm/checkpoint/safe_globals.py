"""What a weights-only ``torch.load`` may unpickle from an mmengine / saim_mm checkpoint.

mmengine's resume checkpoints hold, besides tensors, the message hub's ``HistoryBuffer`` objects and numpy
scalars/arrays, which the weights-only unpickler refuses. Instead of switching the safety off, saim_mm
allow-lists exactly those types. A ``HistoryBuffer`` also pickles its statistics methods as
``getattr(HistoryBuffer, 'mean')`` (and on loading installs them on the class, where mmengine's logger
calls them). Allow-listing the real ``builtins.getattr`` would let a crafted file walk from an allowed
object to any attribute (``getattr(getattr, '__self__')`` is the builtins module) and plant it there, so
the name ``builtins.getattr`` is bound to :func:`statistics_method_getattr`, which returns only those
four methods.
"""
import pickle
from typing import Any, Callable, List

import numpy as np
import torch
from mmengine.logging import HistoryBuffer

NUMPY_DTYPES = ('bool', 'int8', 'int16', 'int32', 'int64', 'uint8', 'uint16', 'uint32', 'uint64', 'float16',
                'float32', 'float64')
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
