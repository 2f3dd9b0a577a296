"""The one function that computes attention, and the attention module of every SAIM block.

A block (:class:`SAIMTransformerLayer`) chooses its attention by class (``attn_cfg=dict(type=...)``), as
timm's and apple/ml-aim's blocks do. Every attention class derives from :class:`SAIMAttention`, keeps its
parameter names (``qkv``, ``proj``; ``gamma1`` with layer scale) and computes attention with
:func:`attend`; what differs between classes is which keys a query may see:

- :class:`SAIMAttention`: full, causal (``is_causal=True``) or masked (``attn_mask``) self-attention, and
  cross-attention to a ``context`` (the query stream reading the content stream);
- ``WindowRelPosAttention`` (``saim_mm/dense/``): windows of the patch grid and a relative position bias,
  for detection and segmentation.

A new attention pattern is a subclass in the package that uses it, registered in ``MODELS``, that builds
its mask (or its kernel's block mask) and calls :func:`attend`.
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from mmpretrain.models.utils import MultiheadAttention
from mmpretrain.registry import MODELS
from torch import Tensor
from torch.nn.attention.bias import causal_lower_right


def attend(q: Tensor,
           k: Tensor,
           v: Tensor,
           mask: Optional[Tensor] = None,
           causal: bool = False,
           dropout_p: float = 0.,
           need_weights: bool = False) -> Tuple[Tensor, Optional[Tensor]]:
    """Scaled dot-product attention (scale ``d**-0.5``).

    ``scaled_dot_product_attention`` (flash / memory-efficient kernels where the device has them) unless
    the weights are asked for; then eager softmax, which gives the same output.

    Args:
        q (Tensor): Queries (B, heads, Lq, d).
        k (Tensor): Keys (B, heads, Lk, d).
        v (Tensor): Values (B, heads, Lk, d).
        mask (Tensor, optional): Mask broadcastable to (B, heads, Lq, Lk): additive, or bool (True = may
            attend).
        causal (bool): Query i sees keys 0..i + Lk - Lq (the last query sees every key; for Lq = Lk the
            ordinary causal mask). Not combined with ``mask``.
        dropout_p (float): Dropout on the attention weights.
        need_weights (bool): Also return the softmax weights (B, heads, Lq, Lk).

    Returns:
        tuple: the output (B, heads, Lq, d) and the weights (None unless ``need_weights``).
    """
    if causal and mask is not None:
        raise ValueError('attend: causal attention takes no additional mask.')
    Lq, Lk = q.shape[-2], k.shape[-2]
    if not need_weights:
        if causal and Lq != Lk:  # fewer queries than keys (partial prediction): the lower-right causal mask
            mask, causal = causal_lower_right(Lq, Lk), False
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p, is_causal=causal)
        return out, None
    scores = (q @ k.transpose(-2, -1)) * q.shape[-1]**-0.5
    if causal:
        future = torch.ones(Lq, Lk, dtype=torch.bool, device=q.device).triu(1 + Lk - Lq)
        scores = scores.masked_fill(future, float('-inf'))
    elif mask is not None and mask.dtype == torch.bool:
        scores = scores.masked_fill(~mask, float('-inf'))
    elif mask is not None:
        scores = scores + mask
    weights = scores.softmax(dim=-1)
    return F.dropout(weights, dropout_p) @ v, weights


@MODELS.register_module()
class SAIMAttention(MultiheadAttention):
    """Multi-head attention with a causal flag, a mask and cross-attention, on mmpretrain's parameters.

    mmpretrain's :class:`MultiheadAttention` (the same constructor and parameter names, so every
    mmpretrain / saim_mm ViT checkpoint loads unchanged) computes full self-attention only; this subclass
    takes the attention pattern as arguments of :meth:`forward`.

    With ``keep_weights = True`` (set by :func:`saim_mm.apis.attention_maps`) the softmax weights of the
    last forward are kept in ``weights`` (B', heads, L, L'); they are computed eagerly then, with the same
    output.

    Args:
        *args: Arguments of :class:`MultiheadAttention` (``embed_dims``, ``num_heads``, ...).
        **kwargs: Keyword arguments of :class:`MultiheadAttention`.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.keep_weights = False
        self.weights: Optional[Tensor] = None

    def project(self, x: Tensor, context: Optional[Tensor] = None) -> Tuple[Tensor, Tensor, Tensor]:
        """Queries from ``x`` (B, L, C); keys and values from ``context`` (B, L', C), or from ``x`` when None.

        Returns:
            tuple: q (B, heads, L, d), k and v (B, heads, L', d).
        """
        B, L, C = x.shape
        heads = self.num_heads
        if context is None:
            q, k, v = self.qkv(x).reshape(B, L, 3, heads, C // heads).permute(2, 0, 3, 1, 4)
            return q, k, v
        weight, bias = self.qkv.weight, self.qkv.bias
        q = F.linear(x, weight[:C], None if bias is None else bias[:C])
        kv = F.linear(context, weight[C:], None if bias is None else bias[C:])
        q = q.reshape(B, L, heads, C // heads).transpose(1, 2)
        k, v = kv.reshape(B, context.shape[1], 2, heads, C // heads).permute(2, 0, 3, 1, 4)
        return q, k, v

    def attend(self, q: Tensor, k: Tensor, v: Tensor, mask: Optional[Tensor] = None,
               is_causal: bool = False) -> Tensor:
        """:func:`attend` with this module's dropout; the output (B, L, C) before the projection."""
        if mask is not None and mask.dtype != torch.bool:
            mask = mask.to(q.dtype)
        out, weights = attend(q, k, v, mask, is_causal, self.attn_drop if self.training else 0.,
                              self.keep_weights)
        if self.keep_weights:
            self.weights = weights
        B, heads, L, d = out.shape
        return out.transpose(1, 2).reshape(B, L, heads * d)

    def output(self, out: Tensor) -> Tensor:
        """Dropout, layer scale and drop path of the projected output (B, L, C) of the attention branch."""
        return self.out_drop(self.gamma1(self.proj_drop(out)))

    def forward(self, x: Tensor, context: Optional[Tensor] = None, attn_mask: Optional[Tensor] = None,
                is_causal: bool = False) -> Tensor:
        """The attention branch on normalised tokens, up to the residual sum.

        Args:
            x (Tensor): Queries' tokens (B, L, C).
            context (Tensor, optional): Keys' and values' tokens (B, L', C); None = self-attention.
            attn_mask (Tensor, optional): (L, L') or broadcastable to (B, heads, L, L'); bool (True = may
                attend) or additive. Not combined with ``is_causal``.
            is_causal (bool): Query i attends to keys 0..i (with fewer queries than keys, L < L': keys
                0..i + L' - L).

        Returns:
            Tensor: (B, L, C).
        """
        return self.output(self.proj(self.attend(*self.project(x, context), attn_mask, is_causal)))
