"""Drawing what :mod:`saim_mm.apis` computes: images back to pixels, heat maps, rows of panels.

Used by the scripts in tools/visualization/. The model-side computations (attention maps,
reconstructions, completion) are in :mod:`saim_mm.apis`.
"""
from typing import Sequence, Tuple

import numpy as np
from PIL import Image
from torch import Tensor, nn


def to_uint8(x: Tensor, model: nn.Module) -> np.ndarray:
    """Undo the preprocessor's normalisation: (3, H, W) -> (H, W, 3) uint8 RGB."""
    pre = model.data_preprocessor
    img = (x * pre.std.view(3, 1, 1) + pre.mean.view(3, 1, 1)).clamp(0, 255)
    return img.permute(1, 2, 0).round().byte().cpu().numpy()


def heatmap(values: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """(h, w) values -> (H, W, 3) uint8 colour map (min-max scaled, nearest-neighbour upsampled)."""
    from matplotlib import colormaps
    v = values - values.min()
    v = v / v.max() if v.max() > 0 else v
    rgb = (colormaps['inferno'](v)[..., :3] * 255).astype(np.uint8)
    return np.asarray(Image.fromarray(rgb).resize((size[1], size[0]), Image.NEAREST))


def tile_row(images: Sequence[np.ndarray], tile: int) -> Image.Image:
    """Resize (H, W, 3) uint8 arrays to ``tile`` x ``tile`` and put them side by side."""
    row = Image.new('RGB', (tile * len(images), tile))
    for i, img in enumerate(images):
        row.paste(Image.fromarray(img).resize((tile, tile), Image.NEAREST), (i * tile, 0))
    return row


__all__ = ['to_uint8', 'heatmap', 'tile_row']
