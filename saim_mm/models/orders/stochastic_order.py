from typing import Optional

import torch
from mmpretrain.registry import MODELS
from torch import Tensor

from .base_order import BaseGenerationOrder


@MODELS.register_module()
class StochasticOrder(BaseGenerationOrder):
    """The paper's order: per sample and iteration ``z = argsort(r)``, ``r ~ U(0, 1)^N``."""
    name = 'stochastic'

    def forward(self, batch_size: int, device: Optional[torch.device] = None) -> Tensor:
        return torch.rand(batch_size, self.num_patches, device=device).argsort(dim=1)
