from contextlib import contextmanager
from typing import Union

import torch
from mmengine.optim import OptimWrapper
from mmpretrain.registry import OPTIM_WRAPPERS
from torch import nn


@OPTIM_WRAPPERS.register_module()
class CPUAmpOptimWrapper(OptimWrapper):
    """``OptimWrapper`` with bf16 autocast of the forward on the CPU.

    mmengine's ``AmpOptimWrapper`` (the GPU configs' mixed precision) refuses to be built on a machine
    without a GPU. This wrapper runs the forward under ``torch.autocast('cpu', dtype=torch.bfloat16)``: matrix
    products in bf16, reductions and the weights in fp32. No loss scaling: bf16 has fp32's exponent range
    (fp16 would need a scaler and is not offered).

    Args:
        dtype (str | torch.dtype): The autocast dtype; only ``'bfloat16'``.
        **kwargs: Arguments of :class:`mmengine.optim.OptimWrapper`.
    """

    def __init__(self, dtype: Union[str, torch.dtype] = 'bfloat16', **kwargs) -> None:
        super().__init__(**kwargs)
        if dtype not in ('bfloat16', torch.bfloat16):
            raise ValueError(f"CPUAmpOptimWrapper dtype must be 'bfloat16', got {dtype!r} (fp16 autocast needs a "
                             'loss scaler; use AmpOptimWrapper on a GPU).')
        self.cast_dtype = torch.bfloat16

    @contextmanager
    def optim_context(self, model: nn.Module):
        """mmengine's context (gradient accumulation) with bf16 autocast on the CPU."""
        with super().optim_context(model), torch.autocast('cpu', dtype=self.cast_dtype):
            yield
