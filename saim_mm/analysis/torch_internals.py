"""The one place where saim_mm reaches into torch's private modules, for measuring cost.

The memory planner needs tensors without storage (``torch._subclasses.fake_tensor.FakeTensorMode``) and a
per-category byte count of every live tensor (``torch.distributed._tools.mem_tracker.MemTracker``); the FLOP
count needs formulas for the CPU's flash-attention kernel, which ``FlopCounterMode`` lacks (it has them for
the GPU kernels). None of these are public API and each may move between torch releases. Every access goes
through a function here; when one is not where it was, it raises :class:`TorchInternalsError` naming what
moved, the torch versions this module was tested with (:data:`TESTED_TORCH_VERSIONS`) and what to do.
"""
import functools
from typing import Callable, Dict, NoReturn

import torch

# torch releases (major.minor) whose internals this module was run against by tests/test_analysis
TESTED_TORCH_VERSIONS = ('2.14', )


class TorchInternalsError(RuntimeError):
    """A private torch module, class, attribute or operator that cost measurement uses has moved."""


def torch_release() -> str:
    """major.minor of the running torch."""
    return '.'.join(torch.__version__.split('+')[0].split('.')[:2])


def moved(what: str, err: BaseException) -> NoReturn:
    """Raise :class:`TorchInternalsError` for ``what``, from ``err``."""
    tested = ', '.join(TESTED_TORCH_VERSIONS)
    raise TorchInternalsError(
        f'{what} is not where saim_mm.analysis expects it in torch {torch.__version__} ({type(err).__name__}: '
        f'{err}). saim_mm/analysis/torch_internals.py was tested with torch {tested}. Install one of those '
        f'(pip install "torch=={TESTED_TORCH_VERSIONS[-1]}.*"), or adapt that module, the only one that uses '
        'torch internals, to this release and add it to TESTED_TORCH_VERSIONS.') from err


def fake_tensor_mode():
    """A new ``FakeTensorMode``: tensors with shapes, dtypes and devices but no storage."""
    try:
        from torch._subclasses.fake_tensor import FakeTensorMode
        return FakeTensorMode()
    except (ImportError, AttributeError, TypeError) as err:
        moved('torch._subclasses.fake_tensor.FakeTensorMode', err)


def peak_memory_tracker():
    """torch's ``MemTracker`` keeping the global peak only.

    ``MemTracker`` also updates the peak of every module seen so far at every operation, which makes a
    ViT-L step take minutes; only the global peak is kept here (its ``_update_peak_stats`` is replaced).
    The tracker counts bytes by category (``Parameter``, ``Buffer``, ``Gradient``, ``Optstate``,
    ``Activation``, ``Temp``, ``Other``) and ``Total``; read them with ``get_tracker_snapshot('peak')``.
    """
    try:
        from torch.distributed._tools.mem_tracker import MemTracker
    except ImportError as err:
        moved('torch.distributed._tools.mem_tracker.MemTracker', err)

    class PeakTracker(MemTracker):

        def _update_peak_stats(self, peak_state) -> None:
            for dev, snap in self._curr_mem_snap.items():
                if self._peak_mem.get(dev, 0) < snap['Total']:
                    self._peak_mem[dev] = snap['Total']
                    self._peak_mem_snap[dev] = dict(snap)

    try:
        tracker = PeakTracker()
        for name in ('_curr_mem_snap', '_peak_mem', '_peak_mem_snap', 'track_external', 'get_tracker_snapshot'):
            getattr(tracker, name)
        getattr(MemTracker, '_update_peak_stats')
    except (AttributeError, TypeError) as err:
        moved('MemTracker (its _curr_mem_snap, _peak_mem, _peak_mem_snap, _update_peak_stats)', err)
    return tracker


@functools.lru_cache(maxsize=1)
def cpu_attention_flop_formulas() -> Dict[object, Callable]:
    """``FlopCounterMode(custom_mapping=...)`` entries for the CPU's flash-attention kernels: the formulas
    torch uses for the GPU's (full square of scores and values)."""
    try:
        from torch.utils import flop_counter
        aten = torch.ops.aten
        pairs = ((aten._scaled_dot_product_flash_attention_for_cpu, flop_counter.sdpa_flop),
                 (aten._scaled_dot_product_flash_attention_for_cpu_backward, flop_counter.sdpa_backward_flop))
    except (ImportError, AttributeError, RuntimeError) as err:
        moved('the CPU flash-attention operators or torch.utils.flop_counter.sdpa_flop', err)
    mapping = {}
    for op, formula in pairs:
        raw = functools.partial(formula)  # already reads shapes from the op's arguments: not to be wrapped again
        raw._get_raw = True
        mapping[op] = raw
    return mapping
