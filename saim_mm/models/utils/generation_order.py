"""Generation orders: drawing them, checking them and permuting tokens into them.

Attention only knows positions through its mask. Once the tokens are permuted into the generation order
``z`` (after the position embedding is added), the paper's permutation masks become the ordinary causal
mask, so both streams run as causal attention (``SAIMTransformerLayer(causal=True)``) without an N x N
mask tensor (docs/method.md, "Exact and fast").
"""
from typing import Optional

import torch
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
