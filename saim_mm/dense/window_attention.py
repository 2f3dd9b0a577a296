"""Window attention and a learned relative position bias over the patch grid, for detection and
segmentation.

:class:`WindowRelPosAttention` is the attention of the dense-task blocks of ``SAIMDenseViT``: a
:class:`SAIMAttention` (same ``attn.qkv`` / ``attn.proj`` parameters, the same :func:`attend`) that attends
within S x S windows of the patch grid and / or adds a relative position bias (``attn.rel_pos_bias.table``).
Windows are non-overlapping tiles of the grid; a grid that is not a multiple of S is zero-padded at the
bottom and right and the padded keys are masked out.
"""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmpretrain.registry import MODELS
from torch import Tensor

from ..models.utils import SAIMAttention


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

    def __init__(self, num_heads: int, size: Sequence[int]) -> None:
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


@MODELS.register_module()
class WindowRelPosAttention(SAIMAttention):
    """Self-attention over a patch grid: within S x S windows, and / or with a relative position bias.

    The patch grid (H, W) of the tokens is set by the backbone before each forward (``patch_grid``, as
    ``SAIMDenseViT.forward`` does): the tokens are ``num_extra_tokens`` E tokens (cls) followed by the H*W
    patches in raster order. The extra tokens get no bias. With activation checkpointing the backward pass
    recomputes the block with the grid set at that time, so run the backward pass of an input before the
    forward pass of an input of another size (as every training loop does).

    Args:
        *args: Arguments of :class:`SAIMAttention` (filled in by the block).
        window_size (int): Window side S in patches; 0 = global attention. Defaults to 0.
        rel_pos_span (tuple[int, int], optional): Add a zero-initialised relative position bias whose table
            covers this (Gh, Gw) span (the window, or the configured patch grid for global attention);
            None = no bias. Defaults to None.
        num_extra_tokens (int): E tokens before the patches; must be 0 with windows. Defaults to 0.
        **kwargs: Keyword arguments of :class:`SAIMAttention`.
    """

    def __init__(self,
                 *args,
                 window_size: int = 0,
                 rel_pos_span: Optional[Sequence[int]] = None,
                 num_extra_tokens: int = 0,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not isinstance(window_size, int) or window_size < 0:
            raise ValueError(f'WindowRelPosAttention window_size must be an int >= 0, got {window_size!r}.')
        if window_size and num_extra_tokens:
            raise ValueError(f'WindowRelPosAttention: windows take patch tokens only, got '
                             f'num_extra_tokens={num_extra_tokens} (the cls token belongs to no window).')
        self.window_size = window_size
        self.num_extra_tokens = num_extra_tokens
        self.patch_grid: Optional[Tuple[int, int]] = None
        self.rel_pos_bias = None if rel_pos_span is None else RelativePositionBias(self.num_heads, rel_pos_span)

    def forward(self, x: Tensor, context: Optional[Tensor] = None, attn_mask: Optional[Tensor] = None,
                is_causal: bool = False) -> Tensor:
        """The attention branch on normalised tokens (B, E + H*W, C), up to the residual sum: (B, E + H*W, C).

        Raises:
            ValueError: a context, a mask or ``is_causal`` is given, the grid is not set, or the token count
                is not E + H*W.
        """
        if context is not None or attn_mask is not None or is_causal:
            raise ValueError('WindowRelPosAttention is self-attention over a patch grid: it takes no context, '
                             f'attn_mask or is_causal (got context={context is not None}, '
                             f'attn_mask={attn_mask is not None}, is_causal={is_causal}).')
        if self.patch_grid is None:
            raise ValueError('WindowRelPosAttention needs the patch grid: set attn.patch_grid = (H, W) before '
                             'the forward (SAIMDenseViT does).')
        hw = self.patch_grid
        E, S = self.num_extra_tokens, self.window_size
        if x.shape[1] != E + hw[0] * hw[1]:
            raise ValueError(f'WindowRelPosAttention got {x.shape[1]} tokens for the patch grid {tuple(hw)} '
                             f'with {E} extra tokens (expected {E + hw[0] * hw[1]}).')
        bias = self.rel_pos_bias
        mask = None
        if S:
            x, valid, padded = window_partition(x, hw, S)
            if bias is not None:
                mask = bias(S, S)[None]  # (1, heads, S*S, S*S), the same for every window
            if padded != tuple(hw):  # padded keys get no attention (known from the shapes: no device sync)
                pad = torch.zeros(valid.shape, dtype=x.dtype, device=x.device).masked_fill(~valid, float('-inf'))
                pad = pad[:, None, None, :].repeat(x.shape[0] // valid.shape[0], 1, 1, 1)  # (B*nW, 1, 1, S*S)
                mask = pad if mask is None else mask + pad
        elif bias is not None:
            mask = F.pad(bias(*hw), (E, 0, E, 0))[None]
        out = self.proj(self.attend(*self.project(x), mask))
        if S:
            out = window_merge(out, hw, padded, S)
        return self.output(out)
