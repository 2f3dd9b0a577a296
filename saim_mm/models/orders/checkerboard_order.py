import torch
from mmpretrain.registry import MODELS
from torch import Tensor

from .base_order import FixedGenerationOrder


@MODELS.register_module()
class CheckerboardOrder(FixedGenerationOrder):
    """The "black" squares of a checkerboard (row + column even) in raster order, then the "white" ones."""
    name = 'checkerboard'

    def permutation(self) -> Tensor:
        h, w = self.grid
        ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing='ij')
        white = ((ys + xs) % 2).flatten()
        return torch.sort(white, stable=True).indices
