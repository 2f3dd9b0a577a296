"""saim_mm.analysis.torch_internals: when a private torch module moves, the error names it, the tested torch
versions and what to do."""
import sys

import pytest

from saim_mm.analysis import torch_internals
from saim_mm.analysis.torch_internals import TESTED_TORCH_VERSIONS, TorchInternalsError


def expect_moved(what: str):
    tested = ', '.join(TESTED_TORCH_VERSIONS)
    return pytest.raises(TorchInternalsError, match=f'{what}.*was tested with torch {tested}\\. Install one of')


def test_running_torch_is_a_tested_one():
    assert torch_internals.torch_release() in TESTED_TORCH_VERSIONS
    torch_internals.fake_tensor_mode()
    torch_internals.peak_memory_tracker()
    assert len(torch_internals.cpu_attention_flop_formulas()) == 2


def test_a_missing_module_is_named(monkeypatch):
    monkeypatch.setitem(sys.modules, 'torch.distributed._tools.mem_tracker', None)
    with expect_moved('torch.distributed._tools.mem_tracker.MemTracker'):
        torch_internals.peak_memory_tracker()
    monkeypatch.setitem(sys.modules, 'torch._subclasses.fake_tensor', None)
    with expect_moved('FakeTensorMode'):
        torch_internals.fake_tensor_mode()


def test_a_moved_attribute_is_named(monkeypatch):
    from torch.distributed._tools.mem_tracker import MemTracker
    from torch.utils import flop_counter
    monkeypatch.delattr(MemTracker, '_update_peak_stats')
    with expect_moved('MemTracker \\(its _curr_mem_snap'):
        torch_internals.peak_memory_tracker()
    monkeypatch.delattr(flop_counter, 'sdpa_flop')
    torch_internals.cpu_attention_flop_formulas.cache_clear()
    try:
        with expect_moved('torch.utils.flop_counter.sdpa_flop'):
            torch_internals.cpu_attention_flop_formulas()
    finally:
        torch_internals.cpu_attention_flop_formulas.cache_clear()
