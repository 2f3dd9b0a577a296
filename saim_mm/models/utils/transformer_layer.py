"""One pre-norm ViT block for every attention SAIM uses, and the one place attention is computed.

``SAIMTransformerLayer`` is mmpretrain's ``TransformerEncoderLayer`` (same parameter names, so every
mmpretrain / saim_mm ViT checkpoint loads unchanged) whose forward takes the attention pattern as
arguments, in the manner of timm's ``Block``:

==========================================  ==========================================================
use                                         call
==========================================  ==========================================================
plain ViT (fine-tuning, features)           ``layer(x)``
content stream (pre-training encoder)       ``layer(h, causal=True)``
query stream (pre-training decoder)         ``layer(g, context=h, causal=True)``
detection / segmentation ViT                ``layer(x, hw=(H, W), window=S, num_extra_tokens=E)``
attention maps (visualization)              ``layer(x, return_attention=True)``
==========================================  ==========================================================

mmpretrain's ``MultiheadAttention`` computes full self-attention only, and its windowed blocks
(``BEiTAttention``, ``ViTSAM``) use other parameter names, so a SAIM encoder could not be loaded into them;
this is why the attention of the block is computed here, with the block's own ``attn.qkv`` / ``attn.proj``.
"""
from typing import Optional, Tuple, Union

import torch
import torch.nn.functional as F
from mmpretrain.models.backbones.vision_transformer import TransformerEncoderLayer
from torch import Tensor
from torch.nn.attention.bias import causal_lower_right
from torch.utils.checkpoint import checkpoint

from .window_attention import RelativePositionBias, window_merge, window_partition


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


class SAIMTransformerLayer(TransformerEncoderLayer):
    """A pre-norm ViT block whose attention pattern is chosen per call.

    ``x <- x + DropPath(Proj(Attn(Q=LN1(x), K=V=LN1(context or x))))``, then ``x <- x + MLP(LN2(x))``.
    The same LayerNorm ``ln1`` normalises the queries and the context (the query stream of SAIM); the
    context has the block's width (a narrower decoder projects it first).

    Args:
        *args: Arguments of :class:`TransformerEncoderLayer` (``embed_dims``, ``num_heads``,
            ``feedforward_channels``, ...).
        with_cp (bool): Activation checkpointing: in training, keep only the block's input and recompute
            the block in the backward pass. Defaults to False.
        **kwargs: Keyword arguments of :class:`TransformerEncoderLayer`.
    """

    def __init__(self, *args, with_cp: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.with_cp = with_cp

    @property
    def rel_pos_bias(self) -> Optional[RelativePositionBias]:
        """The learned relative position bias (``attn.rel_pos_bias``), if the block has one."""
        return getattr(self.attn, 'rel_pos_bias', None)

    def add_rel_pos_bias(self, span: Tuple[int, int]) -> None:
        """Give the block a zero-initialised relative position bias for a (Gh, Gw) ``span`` of patches.

        It is stored as ``attn.rel_pos_bias`` (state-dict key ``attn.rel_pos_bias.table``) and added to the
        attention logits between patch tokens whenever the forward is given ``hw``.
        """
        self.attn.rel_pos_bias = RelativePositionBias(self.attn.num_heads, span)

    def forward(self,
                x: Tensor,
                context: Optional[Tensor] = None,
                causal: bool = False,
                hw: Optional[Tuple[int, int]] = None,
                window: int = 0,
                num_extra_tokens: int = 0,
                attn_mask: Optional[Tensor] = None,
                return_attention: bool = False) -> Union[Tensor, Tuple[Tensor, Tensor]]:
        """Run the block.

        Args:
            x (Tensor): Tokens (B, L, C).
            context (Tensor, optional): Keys/values (B, L', C) for cross-attention; None = self-attention.
            causal (bool): Token (query) i attends to tokens (context tokens) 0..i only; with fewer queries
                L than context tokens L', query i attends to context tokens 0..i + L' - L.
            hw (tuple, optional): Patch grid (H, W) of ``x``'s last H*W tokens (raster order); needed for
                ``window`` and for the relative position bias.
            window (int): S > 0: self-attention within S x S windows of the grid (the grid is zero-padded
                to multiples of S and padded keys are masked out). Needs ``num_extra_tokens == 0``.
            num_extra_tokens (int): E tokens (cls) before the patches; they get no relative position bias.
            attn_mask (Tensor, optional): (L, L') bool, True = may attend (e.g. block-causal segments);
                the same for the whole batch. Not combined with ``causal``, ``window`` or a bias.
            return_attention (bool): Also return the attention weights (B or B*windows, heads, L, L').

        Returns:
            Tensor | tuple: the output (B, L, C), and the weights when ``return_attention``.
        """
        if self.with_cp and self.training and torch.is_grad_enabled() and not return_attention:
            return checkpoint(self._forward, x, context, causal, hw, window, num_extra_tokens, attn_mask, False,
                              use_reentrant=False)
        return self._forward(x, context, causal, hw, window, num_extra_tokens, attn_mask, return_attention)

    def _forward(self, x: Tensor, context: Optional[Tensor], causal: bool, hw: Optional[Tuple[int, int]],
                 window: int, num_extra_tokens: int, attn_mask: Optional[Tensor], return_attention: bool):
        out, weights = self._attention(
            self.ln1(x), None if context is None else self.ln1(context), causal, hw, window, num_extra_tokens,
            attn_mask, return_attention)
        x = x + out
        x = self.ffn(self.ln2(x), identity=x)
        return (x, weights) if return_attention else x

    def _attention(self, y: Tensor, context: Optional[Tensor], causal: bool, hw: Optional[Tuple[int, int]],
                   window: int, num_extra_tokens: int, attn_mask: Optional[Tensor],
                   need_weights: bool) -> Tuple[Tensor, Optional[Tensor]]:
        """The attention branch on normalised tokens ``y`` (B, L, C), up to the residual sum."""
        attn = self.attn
        B, L, C = y.shape
        heads = attn.num_heads
        bias = self.rel_pos_bias if hw is not None else None
        if (window or self.rel_pos_bias is not None) and hw is None:
            raise ValueError('SAIMTransformerLayer: window attention and the relative position bias need '
                             'the patch grid hw=(H, W).')
        if window and (context is not None or causal or num_extra_tokens):
            raise ValueError('SAIMTransformerLayer: window attention is self-attention over a patch grid '
                             f'without extra tokens (got context={context is not None}, causal={causal}, '
                             f'num_extra_tokens={num_extra_tokens}).')
        if attn_mask is not None and (causal or window or bias is not None):
            raise ValueError('SAIMTransformerLayer: attn_mask is not combined with causal, window or a relative '
                             'position bias.')
        mask = attn_mask
        if window:
            y, valid, padded = window_partition(y, hw, window)
            if bias is not None:
                mask = bias(window, window)[None]  # (1, heads, S*S, S*S), the same for every window
            if padded != tuple(hw):  # padded keys get no attention (known from the shapes: no device sync)
                pad = torch.zeros(valid.shape, dtype=y.dtype, device=y.device).masked_fill(~valid, float('-inf'))
                pad = pad[:, None, None, :].repeat(B, 1, 1, 1)  # (B*nW, 1, 1, S*S)
                mask = pad if mask is None else mask + pad
        elif bias is not None:
            mask = F.pad(bias(*hw), (num_extra_tokens, 0, num_extra_tokens, 0))[None]
        n = y.shape[1]
        if context is None:
            q, k, v = attn.qkv(y).reshape(-1, n, 3, heads, C // heads).permute(2, 0, 3, 1, 4)
        else:
            weight, qkv_bias = attn.qkv.weight, attn.qkv.bias
            q = F.linear(y, weight[:C], None if qkv_bias is None else qkv_bias[:C])
            kv = F.linear(context, weight[C:], None if qkv_bias is None else qkv_bias[C:])
            q = q.reshape(B, n, heads, C // heads).transpose(1, 2)
            k, v = kv.reshape(B, context.shape[1], 2, heads, C // heads).permute(2, 0, 3, 1, 4)
        if mask is not None and mask.dtype != torch.bool:
            mask = mask.to(q.dtype)
        out, weights = attend(q, k, v, mask, causal,
                              attn.attn_drop if self.training else 0., need_weights)
        out = attn.proj(out.transpose(1, 2).reshape(-1, n, C))
        if window:
            out = window_merge(out, hw, padded, window)
        return attn.out_drop(attn.gamma1(attn.proj_drop(out))), weights
