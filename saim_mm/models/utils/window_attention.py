"""Windows of a patch grid and a learned relative position bias, for the dense-task (detection /
segmentation) attention of :class:`SAIMTransformerLayer`.

Windows are non-overlapping S x S tiles of the patch grid; a grid that is not a multiple of S is padded at
the bottom and right, and the padding is reported so that the attention can mask it out.
"""
from typing import Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor


class RelativePositionBias(nn.Module):
    """A learned bias per head for every 2-D offset between two patches, initialised to zero.

    The table covers the offsets of a ``size`` = (Gh, Gw) span: shape (num_heads, 2Gh-1, 2Gw-1). An offset
    means the same distance in any grid, so a smaller grid (a test image padded less than the training size
    in a global-attention block) uses the middle of the table as it is, and offsets beyond the table (a
    larger grid) take the value of the farthest learned offset in that direction.

    Args:
        num_heads (int): Attention heads.
        size (tuple[int, int]): The span (in patches) the table is made for: the window, or the patch grid of
            the configured image size for global-attention blocks.
    """

    def __init__(self, num_heads: int, size: Tuple[int, int]) -> None:
        super().__init__()
        self.size = (int(size[0]), int(size[1]))
        self.table = nn.Parameter(torch.zeros(num_heads, 2 * self.size[0] - 1, 2 * self.size[1] - 1))

    def forward(self, h: int, w: int) -> Tensor:
        """Bias of shape (num_heads, h*w, h*w) between the tokens of an h x w grid (raster order)."""
        Gh, Gw = self.size
        device = self.table.device
        ys, xs = torch.meshgrid(torch.arange(h, device=device), torch.arange(w, device=device), indexing='ij')
        ys, xs = ys.flatten(), xs.flatten()
        dy = (ys[:, None] - ys[None, :]).clamp(-(Gh - 1), Gh - 1) + Gh - 1  # (hw, hw), in [0, 2Gh-2]
        dx = (xs[:, None] - xs[None, :]).clamp(-(Gw - 1), Gw - 1) + Gw - 1
        return self.table[:, dy, dx]


def window_partition(x: Tensor, hw: Tuple[int, int], window: int) -> Tuple[Tensor, Tensor, Tuple[int, int]]:
    """Split a token grid into non-overlapping windows, zero-padding the bottom and right edges.

    Args:
        x (Tensor): Tokens (B, H*W, C) in raster order.
        hw (tuple): (H, W).
        window (int): Window side S.

    Returns:
        tuple: windows (B*nW, S*S, C); ``valid`` (nW, S*S) bool, False for padding tokens; padded grid
        (Hp, Wp) with Hp, Wp multiples of S.
    """
    B, _, C = x.shape
    H, W = hw
    ph, pw = (-H) % window, (-W) % window
    grid = x.view(B, H, W, C)
    valid = torch.ones(1, H, W, 1, dtype=torch.bool, device=x.device)
    if ph or pw:
        grid = F.pad(grid, (0, 0, 0, pw, 0, ph))
        valid = F.pad(valid, (0, 0, 0, pw, 0, ph), value=False)
    Hp, Wp = H + ph, W + pw

    def split(t: Tensor) -> Tensor:
        t = t.view(t.shape[0], Hp // window, window, Wp // window, window, t.shape[-1])
        return t.permute(0, 1, 3, 2, 4, 5).reshape(-1, window * window, t.shape[-1])

    return split(grid), split(valid)[..., 0], (Hp, Wp)


def window_merge(windows: Tensor, hw: Tuple[int, int], padded: Tuple[int, int], window: int) -> Tensor:
    """Inverse of :func:`window_partition`: (B*nW, S*S, C) -> (B, H*W, C), padding dropped."""
    Hp, Wp = padded
    C = windows.shape[-1]
    grid = windows.view(-1, Hp // window, Wp // window, window, window, C).permute(0, 1, 3, 2, 4, 5)
    grid = grid.reshape(-1, Hp, Wp, C)[:, :hw[0], :hw[1]]
    return grid.reshape(grid.shape[0], hw[0] * hw[1], C)
