"""Attention in generation order: the fast, exact form of SAIM's two streams.

Attention only knows positions through its mask. Once the tokens are permuted into the generation order
``z`` (after the position embedding is added), the paper's permutation masks become the ordinary causal
mask, so ``scaled_dot_product_attention(..., is_causal=True)`` computes them without an N x N mask tensor.
"""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

ORDER_MODES = ('stochastic', 'raster')


def sample_order(batch_size: int,
                 num_patches: int,
                 mode: str = 'stochastic',
                 device: Optional[torch.device] = None) -> Tensor:
    """Draw a generation order per sample.

    Args:
        batch_size (int): B.
        num_patches (int): N.
        mode (str): ``'stochastic'`` (``z = argsort(r)``, ``r ~ U(0, 1)^N``) or ``'raster'``
            (``z = (0, 1, ..., N-1)`` for every sample).
        device (torch.device, optional): Device of the result.

    Returns:
        Tensor: Long tensor of shape (B, N); row b is a permutation of ``range(N)``.
    """
    if mode == 'stochastic':
        return torch.rand(batch_size, num_patches, device=device).argsort(dim=1)
    if mode == 'raster':
        return torch.arange(num_patches, device=device).expand(batch_size, -1)
    raise ValueError(f'Unknown order mode {mode!r}; expected one of {ORDER_MODES}.')


def check_order(order: Tensor, batch_size: int, num_patches: int) -> None:
    """Raise a ValueError unless ``order`` is a (B, N) batch of permutations of ``range(N)``."""
    if order.dim() != 2 or tuple(order.shape) != (batch_size, num_patches):
        raise ValueError(f'order must have shape (B, N) = ({batch_size}, {num_patches}), '
                         f'got {tuple(order.shape)}.')
    expected = torch.arange(num_patches, device=order.device)
    if not torch.equal(order.sort(dim=1).values, expected.expand(batch_size, -1)):
        raise ValueError(f'every row of order must be a permutation of range({num_patches}).')


def gather_tokens(x: Tensor, order: Tensor) -> Tensor:
    """Permute tokens into generation order.

    Args:
        x (Tensor): Tokens of shape (B, N, C) (or (1, N, C), broadcast over the batch).
        order (Tensor): Long tensor of shape (B, N).

    Returns:
        Tensor: (B, N, C) with ``out[b, t] = x[b, order[b, t]]``.
    """
    x = x.expand(order.shape[0], -1, -1)
    return torch.gather(x, 1, order.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


def causal_block_forward(layer: torch.nn.Module, x: Tensor, context: Optional[Tensor] = None) -> Tensor:
    """Run one pre-norm ViT block (mmpretrain ``TransformerEncoderLayer``) with causal attention.

    Without ``context`` this is the content stream: self-attention where token t sees tokens 0..t.
    With ``context`` it is the query stream: queries from ``x``, keys and values from ``context``
    (both through the block's first LayerNorm); query t sees context tokens 0..t.

    Args:
        layer (nn.Module): A block with ``ln1``, ``attn`` (mmpretrain ``MultiheadAttention`` with a fused
            ``qkv`` Linear), ``ln2`` and ``ffn`` (mmcv ``FFN``).
        x (Tensor): Tokens of shape (B, L, C) in generation order.
        context (Tensor, optional): Keys/values of shape (B, L, C) in generation order.

    Returns:
        Tensor: (B, L, C).
    """
    attn = layer.attn
    B, L, C = x.shape
    heads = attn.num_heads
    y = layer.ln1(x)
    if context is None:
        q, k, v = attn.qkv(y).reshape(B, L, 3, heads, C // heads).permute(2, 0, 3, 1, 4)
    else:
        weight, bias = attn.qkv.weight, attn.qkv.bias
        q = F.linear(y, weight[:C], None if bias is None else bias[:C])
        kv = F.linear(layer.ln1(context), weight[C:], None if bias is None else bias[C:])
        q = q.reshape(B, L, heads, C // heads).transpose(1, 2)
        k, v = kv.reshape(B, context.shape[1], 2, heads, C // heads).permute(2, 0, 3, 1, 4)
    out = F.scaled_dot_product_attention(
        q, k, v, dropout_p=attn.attn_drop if layer.training else 0., is_causal=True)
    out = attn.proj(out.transpose(1, 2).reshape(B, L, C))
    x = x + attn.out_drop(attn.gamma1(attn.proj_drop(out)))
    return layer.ffn(layer.ln2(x), identity=x)
