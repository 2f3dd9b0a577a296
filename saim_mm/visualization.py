"""Drawing what :mod:`saim_mm.apis` computes: images back to pixels, heat maps, labelled rows of panels.

Used by the scripts in tools/visualization/. The model-side computations (attention maps,
reconstructions, completion) are in :mod:`saim_mm.apis`.
"""
import argparse
from typing import List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor, nn

#: Background of the caption strip above each panel, and the colour of its text.
CAPTION_BACKGROUND = (255, 255, 255)
CAPTION_TEXT = (0, 0, 0)
CAPTION_PAD = 2


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


def order_map(order: Tensor, grid: Tuple[int, int], size: Tuple[int, int]) -> np.ndarray:
    """A generation order as a picture: each patch coloured by its step (dark = early, bright = late).

    Args:
        order (Tensor): (N,) patch indices in raster numbering, ``order[t]`` generated at step t.
        grid (tuple): patch grid (h, w), h * w = N.
        size (tuple): output (H, W) in pixels.

    Returns:
        np.ndarray: (H, W, 3) uint8.
    """
    n = grid[0] * grid[1]
    if order.numel() != n:
        raise ValueError(f'order has {order.numel()} entries, expected {n} for a {grid[0]}x{grid[1]} grid')
    step = np.empty(n, dtype=np.float64)
    step[order.flatten().cpu().numpy()] = np.arange(n)
    return heatmap(step.reshape(grid), size)


def _wrap(text: str, font: ImageFont.ImageFont, width: int, draw: ImageDraw.ImageDraw) -> List[str]:
    """Split ``text`` into lines no wider than ``width`` pixels (words first, then characters)."""
    def fits(s: str) -> bool:
        return draw.textlength(s, font=font) <= width

    lines: List[str] = []
    for word in text.split():
        if lines and fits(lines[-1] + ' ' + word):
            lines[-1] += ' ' + word
            continue
        while not fits(word) and len(word) > 1:  # a word wider than the panel: break it
            cut = max(k for k in range(1, len(word) + 1) if fits(word[:k]) or k == 1)
            lines.append(word[:cut])
            word = word[cut:]
        lines.append(word)
    return lines or ['']


def tile_row(images: Sequence[np.ndarray], tile: int,
             labels: Optional[Sequence[str]] = None) -> Image.Image:
    """Resize (H, W, 3) uint8 arrays to ``tile`` x ``tile`` and put them side by side.

    Args:
        images (Sequence[np.ndarray]): the panels, each (H, W, 3) uint8.
        tile (int): side of each panel in pixels.
        labels (Sequence[str], optional): one caption per panel, drawn with PIL's default font on a
            white strip above it (wrapped to the panel's width). None: no strip.

    Returns:
        PIL.Image.Image: RGB image of width ``tile * len(images)`` and height ``tile`` plus the strip.
    """
    if labels is not None and len(labels) != len(images):
        raise ValueError(f'tile_row got {len(images)} panels and {len(labels)} labels; '
                         'expected one label per panel')
    strip = 0
    lines: List[List[str]] = []
    if labels is not None:
        font = ImageFont.load_default()
        probe = ImageDraw.Draw(Image.new('RGB', (1, 1)))
        lines = [_wrap(str(label), font, tile - 2 * CAPTION_PAD, probe) for label in labels]
        top, bottom = probe.textbbox((0, 0), 'Ag', font=font)[1::2]
        line_h = bottom + 2
        strip = max(len(ls) for ls in lines) * line_h + 2 * CAPTION_PAD
    row = Image.new('RGB', (tile * len(images), tile + strip), CAPTION_BACKGROUND)
    draw = ImageDraw.Draw(row)
    for i, img in enumerate(images):
        row.paste(Image.fromarray(img).resize((tile, tile), Image.NEAREST), (i * tile, strip))
        for k, line in enumerate(lines[i] if lines else []):
            draw.text((i * tile + CAPTION_PAD, CAPTION_PAD + k * line_h), line, fill=CAPTION_TEXT,
                      font=font)
    return row


def stack_rows(rows: Sequence[Image.Image]) -> Image.Image:
    """Put rows of panels (e.g. from :func:`tile_row`) one under the other, left-aligned, on white."""
    width = max(r.width for r in rows)
    out = Image.new('RGB', (width, sum(r.height for r in rows)), CAPTION_BACKGROUND)
    y = 0
    for r in rows:
        out.paste(r, (0, y))
        y += r.height
    return out


def vis_arg_parser(description: str, out_dir: str) -> argparse.ArgumentParser:
    """The command line the visualization tools share: config, checkpoint, images, output folder, panel
    size and device; each tool adds its own options."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('config', help='SAIM pre-training config, or a model name of the index')
    parser.add_argument('checkpoint', help='SAIM checkpoint in any layout saim_mm reads (docs/checkpoints.md)')
    parser.add_argument('images', nargs='+', help='image files')
    parser.add_argument('--out-dir', default=out_dir)
    parser.add_argument('--tile', type=int, default=224, help='side of each panel in pixels')
    parser.add_argument('--device', default='cpu')
    return parser


__all__ = ['vis_arg_parser', 'to_uint8', 'heatmap', 'order_map', 'tile_row', 'stack_rows']
