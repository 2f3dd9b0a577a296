"""Windowed / global self-attention with an optional relative position bias, for dense-task ViT blocks.

The blocks are mmpretrain ``TransformerEncoderLayer`` s (so a SAIM checkpoint loads unchanged); this module
only changes *which tokens attend to which*: within non-overlapping windows of the patch grid (padded when the
grid is not a multiple of the window, padded keys masked out) or over the whole grid, plus a learned
relative position bias. mmpretrain's own windowed blocks (``BEiTAttention``, ``ViTSAM``) use other parameter
names, so they cannot hold a SAIM encoder's weights; this is why the forward is written here.
"""
from typing import Optional, Tuple

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


def dense_block_forward(layer: nn.Module,
                        x: Tensor,
                        hw: Tuple[int, int],
                        window: int = 0,
                        num_extra_tokens: int = 0,
                        rel_pos_bias: Optional[RelativePositionBias] = None) -> Tensor:
    """Run one pre-norm ViT block (mmpretrain ``TransformerEncoderLayer``) with window or global attention.

    Args:
        layer (nn.Module): A block with ``ln1``, ``attn`` (mmpretrain ``MultiheadAttention``: fused ``qkv``,
            ``proj``, ``proj_drop``, ``gamma1``, ``out_drop`` = drop path), ``ln2`` and ``ffn``.
        x (Tensor): Tokens (B, E + H*W, C): E extra tokens (cls) first, then the patches in raster order.
        hw (tuple): Patch grid (H, W).
        window (int): Window side; 0 = global attention. Windows need ``num_extra_tokens == 0``.
        num_extra_tokens (int): E. Extra tokens get no relative position bias (zero rows and columns).
        rel_pos_bias (RelativePositionBias, optional): Bias added to the attention logits.

    Returns:
        Tensor: (B, E + H*W, C).
    """
    attn = layer.attn
    B, L, C = x.shape
    heads = attn.num_heads
    y = layer.ln1(x)
    mask = None
    if window:
        if num_extra_tokens:
            raise ValueError('window attention needs a grid without extra (cls) tokens, '
                             f'got num_extra_tokens={num_extra_tokens}.')
        y, valid, padded = window_partition(y, hw, window)
        if rel_pos_bias is not None:
            mask = rel_pos_bias(window, window)[None]  # (1, heads, S*S, S*S), broadcast over windows
        if padded != tuple(hw):  # padded keys get no attention (known from the shapes: no device sync)
            pad = torch.zeros(valid.shape, dtype=y.dtype, device=y.device).masked_fill(~valid, float('-inf'))
            pad = pad[:, None, None, :].repeat(B, 1, 1, 1)  # (B*nW, 1, 1, S*S)
            mask = pad if mask is None else mask + pad
    elif rel_pos_bias is not None:
        bias = rel_pos_bias(*hw)
        if num_extra_tokens:
            bias = F.pad(bias, (num_extra_tokens, 0, num_extra_tokens, 0))
        mask = bias[None]
    n = y.shape[1]
    q, k, v = attn.qkv(y).reshape(-1, n, 3, heads, C // heads).permute(2, 0, 3, 1, 4)
    if mask is not None:
        mask = mask.to(q.dtype)
    out = F.scaled_dot_product_attention(
        q, k, v, attn_mask=mask, dropout_p=attn.attn_drop if layer.training else 0.)
    out = attn.proj(out.transpose(1, 2).reshape(-1, n, C))
    if window:
        out = window_merge(out, hw, padded, window)
    x = x + attn.out_drop(attn.gamma1(attn.proj_drop(out)))
    return layer.ffn(layer.ln2(x), identity=x)
