import torch
from mmpretrain.registry import MODELS
from torch import Tensor

from .base_order import FixedGenerationOrder


@MODELS.register_module()
class RasterOrder(FixedGenerationOrder):
    """Row by row, left to right (the ViT-iGPT baseline; AIM's order)."""
    name = 'raster'

    def permutation(self) -> Tensor:
        return torch.arange(self.num_patches)
