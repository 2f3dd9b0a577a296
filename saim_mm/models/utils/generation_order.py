"""Generation orders in the streams: checking them, permuting tokens into them, block-causal masks.

The orders themselves are drawn by the modules in ``models/orders/``.

Attention only knows positions through its mask. Once the tokens are permuted into the generation order
``z`` (after the position embedding is added), the paper's permutation masks become the ordinary causal
mask, so both streams run as causal attention (``SAIMTransformerLayer``, ``is_causal=True``) without an N x N
mask tensor (docs/method.md, "Exact and fast").
"""
from typing import Optional

import torch
from torch import Tensor

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


def segment_masks(num_patches: int, segment_size: int, device: Optional[torch.device] = None):
    """Block-causal masks of both streams when segments of ``segment_size`` G steps are predicted together.

    Tokens are in generation order. Content stream over ``[cls, z_0, ..., z_{N-1}]``: the cls token sees
    itself; step t sees the cls token and every step of its own and earlier segments. Query stream, queries
    for ``z_0..z_{N-1}`` against keys ``[h_cls, h_{z_0}, ..., h_{z_{N-2}}]``: step t sees the cls token
    and the steps of earlier segments only. One mask serves the whole batch (all samples have the same
    segment lengths); with G = 1 these are the ordinary causal masks.

    Returns:
        tuple[Tensor, Tensor]: bool masks (True = may attend), (N+1, N+1) and (N, N).
    """
    seg = torch.arange(num_patches, device=device) // segment_size
    content = torch.zeros(num_patches + 1, num_patches + 1, dtype=torch.bool, device=device)
    content[:, 0] = True
    content[1:, 1:] = seg[None, :] <= seg[:, None]
    query = torch.ones(num_patches, num_patches, dtype=torch.bool, device=device)
    query[:, 1:] = seg[None, :-1] < seg[:, None]
    return content, query
