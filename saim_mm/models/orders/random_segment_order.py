from typing import Optional, Sequence

import torch
from mmpretrain.registry import MODELS
from torch import Tensor

from .base_order import BaseGenerationOrder


@MODELS.register_module()
class RandomSegmentOrder(BaseGenerationOrder):
    """Random segments: the grid is cut into ``segment`` = (sh, sw) tiles, the tiles come in a random order
    per sample, and the patches of a tile are predicted together (in parallel) from the earlier tiles.

    Inside a tile the patches are listed in raster order; which of them comes first does not matter, since
    the attention is block-causal over tiles (``segment_size = sh * sw``).

    Args:
        grid (tuple[int, int]): The patch grid (h, w); sh must divide h and sw must divide w.
        segment (tuple[int, int]): Tile size in patches. Defaults to (2, 2).
    """
    name = 'random_segments'

    def __init__(self, grid: Sequence[int], segment: Sequence[int] = (2, 2),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(grid, init_cfg=init_cfg)
        sh, sw = int(segment[0]), int(segment[1])
        h, w = self.grid
        if sh <= 0 or sw <= 0 or h % sh or w % sw:
            raise ValueError(f'RandomSegmentOrder segment {tuple(segment)} must tile the {h}x{w} patch grid '
                             '(positive sides dividing it).')
        self.segment = (sh, sw)
        ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing='ij')
        tile = (ys // sh) * (w // sw) + xs // sw  # tile index of each patch
        self.register_buffer('tiles', torch.sort(tile.flatten(), stable=True).indices.view(-1, sh * sw),
                             persistent=False)  # (num_tiles, G): the patches of each tile

    @property
    def segment_size(self) -> int:
        return self.segment[0] * self.segment[1]

    def forward(self, batch_size: int, device: Optional[torch.device] = None) -> Tensor:
        num_tiles = self.tiles.shape[0]
        tile_order = torch.rand(batch_size, num_tiles, device=device).argsort(dim=1)
        return self.tiles.to(device)[tile_order].flatten(1)
