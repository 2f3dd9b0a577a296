import torch
from mmpretrain.registry import MODELS
from torch import Tensor

from .base_order import FixedGenerationOrder


@MODELS.register_module()
class CentreOutOrder(FixedGenerationOrder):
    """From the centre of the grid outwards: patches by distance of their centre to the grid's centre
    (ties in raster order)."""
    name = 'centre_out'

    def permutation(self) -> Tensor:
        h, w = self.grid
        ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64),
                                indexing='ij')
        dist = (ys - (h - 1) / 2)**2 + (xs - (w - 1) / 2)**2
        return torch.sort(dist.flatten(), stable=True).indices
