import torch
from mmpretrain.registry import MODELS
from torch import Tensor

from .base_order import FixedGenerationOrder


@MODELS.register_module()
class SpiralOrder(FixedGenerationOrder):
    """A clockwise spiral from the top-left corner inwards: the border first, the centre last."""
    name = 'spiral'

    def permutation(self) -> Tensor:
        h, w = self.grid
        top, bottom, left, right = 0, h - 1, 0, w - 1
        out = []
        while top <= bottom and left <= right:
            out += [top * w + c for c in range(left, right + 1)]
            out += [r * w + right for r in range(top + 1, bottom + 1)]
            if top < bottom:
                out += [bottom * w + c for c in range(right - 1, left - 1, -1)]
            if left < right:
                out += [r * w + left for r in range(bottom - 1, top, -1)]
            top, bottom, left, right = top + 1, bottom - 1, left + 1, right - 1
        return torch.tensor(out)
