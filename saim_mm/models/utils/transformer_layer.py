"""One pre-norm ViT block for every stream of SAIM; its attention is a module chosen by class.

``SAIMTransformerLayer`` is mmpretrain's ``TransformerEncoderLayer`` (same parameter names, so every
mmpretrain / saim_mm ViT checkpoint loads unchanged) whose attention is built from ``attn_cfg`` and whose
forward takes the attention pattern in the manner of timm's ``Block(x, attn_mask, is_causal)``:

==========================================  ==========================================================
use                                         call
==========================================  ==========================================================
plain ViT (fine-tuning, features)           ``layer(x)``
content stream (pre-training encoder)       ``layer(h, is_causal=True)``
query stream (pre-training decoder)         ``layer(g, context=h, is_causal=True)``
block-causal segments (either stream)       ``layer(h, attn_mask=mask)``
detection / segmentation ViT                ``attn_cfg=dict(type=WindowRelPosAttention, ...)`` (dense/)
attention maps (visualization)              ``layer.attn.keep_weights = True``; read ``layer.attn.weights``
==========================================  ==========================================================
"""
from typing import Optional

import torch
from mmpretrain.models.backbones.vision_transformer import TransformerEncoderLayer
from mmpretrain.registry import MODELS
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from .attention import SAIMAttention


class SAIMTransformerLayer(TransformerEncoderLayer):
    """A pre-norm ViT block with a configurable attention module.

    ``x <- x + Attn(Q=LN1(x), K=V=LN1(context or x))``, then ``x <- x + MLP(LN2(x))`` (dropout, layer
    scale and drop path inside each branch, as in mmpretrain). The same LayerNorm ``ln1`` normalises the
    queries and the context (the query stream of SAIM); the context has the block's width (a narrower
    decoder projects it first).

    Args:
        embed_dims (int): Width C.
        num_heads (int): Attention heads.
        feedforward_channels (int): Hidden width of the MLP.
        layer_scale_init_value (float): Layer scale of both branches; 0 = none. Defaults to 0.
        drop_rate (float): Dropout after the attention projection and in the MLP. Defaults to 0.
        attn_drop_rate (float): Dropout on the attention weights. Defaults to 0.
        drop_path_rate (float): Stochastic depth of both branches. Defaults to 0.
        num_fcs (int): Linear layers of the MLP. Defaults to 2.
        qkv_bias (bool): Bias of the qkv projection. Defaults to True.
        ffn_type (str): ``'origin'`` or ``'swiglu_fused'`` (mmpretrain's MLPs). Defaults to ``'origin'``.
        act_cfg (dict): MLP activation. Defaults to GELU.
        norm_cfg (dict): Norm layer config. Defaults to LN.
        attn_cfg (dict): The attention: ``type`` a :class:`SAIMAttention` subclass (registered name or the
            class) and its own arguments; the block fills in its sizes, dropouts and layer scale.
            Defaults to ``dict(type='SAIMAttention')``.
        with_cp (bool): Activation checkpointing: in training, keep only the block's input and recompute
            the block in the backward pass. Defaults to False.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 embed_dims: int,
                 num_heads: int,
                 feedforward_channels: int,
                 layer_scale_init_value: float = 0.,
                 drop_rate: float = 0.,
                 attn_drop_rate: float = 0.,
                 drop_path_rate: float = 0.,
                 num_fcs: int = 2,
                 qkv_bias: bool = True,
                 ffn_type: str = 'origin',
                 act_cfg: dict = dict(type='GELU'),
                 norm_cfg: dict = dict(type='LN'),
                 attn_cfg: dict = dict(type='SAIMAttention'),
                 with_cp: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(
            embed_dims, num_heads, feedforward_channels, layer_scale_init_value=layer_scale_init_value,
            drop_rate=drop_rate, attn_drop_rate=attn_drop_rate, drop_path_rate=drop_path_rate, num_fcs=num_fcs,
            qkv_bias=qkv_bias, ffn_type=ffn_type, act_cfg=act_cfg, norm_cfg=norm_cfg, init_cfg=init_cfg)
        self.with_cp = with_cp
        # what TransformerEncoderLayer gives its attention; every attention class takes these
        self.attn_args = dict(
            embed_dims=embed_dims,
            num_heads=num_heads,
            attn_drop=attn_drop_rate,
            proj_drop=drop_rate,
            dropout_layer=dict(type='DropPath', drop_prob=drop_path_rate),
            qkv_bias=qkv_bias,
            layer_scale_init_value=layer_scale_init_value)
        self.set_attention(attn_cfg)

    def set_attention(self, attn_cfg: dict) -> None:
        """Replace the attention by one built from ``attn_cfg`` that keeps the current weights.

        The new module takes over ``attn.qkv``, ``attn.proj`` (and ``attn.gamma1``); parameters its class
        adds keep their own initialisation. It is built on a forked random stream, so the seeded initial
        weights of every module do not depend on the attention class.

        Raises:
            KeyError: ``attn_cfg['type']`` is not a registered name.
            TypeError: the class is not a :class:`SAIMAttention`.
        """
        cfg = dict(attn_cfg)
        attn_type = cfg.pop('type', None)
        # MODELS.get, not MODELS.build: a block is also built inside mmdet / mmseg models, whose default
        # scope would look the name up in their own registries
        cls = MODELS.get(attn_type) if isinstance(attn_type, str) else attn_type
        if cls is None:
            raise KeyError(f'SAIMTransformerLayer attn_cfg type {attn_type!r} is not a registered attention.')
        if not (isinstance(cls, type) and issubclass(cls, SAIMAttention)):
            raise TypeError(f'SAIMTransformerLayer attn_cfg type {attn_type!r} must be a subclass of '
                            'SAIMAttention (saim_mm/models/utils/attention.py).')
        with torch.random.fork_rng(devices=[]):
            attn = cls(**self.attn_args, **cfg)
        missing, unexpected = attn.load_state_dict(self.attn.state_dict(), strict=False)
        kept = set(self.attn.state_dict())
        if unexpected or any(key in kept for key in missing):
            raise TypeError(f'{cls.__name__} does not keep the parameters of SAIMAttention: missing '
                            f'{sorted(k for k in missing if k in kept)}, unexpected {sorted(unexpected)}.')
        self.attn = attn

    def forward(self, x: Tensor, context: Optional[Tensor] = None, attn_mask: Optional[Tensor] = None,
                is_causal: bool = False) -> Tensor:
        """Run the block.

        Args:
            x (Tensor): Tokens (B, L, C).
            context (Tensor, optional): Keys/values (B, L', C) for cross-attention; None = self-attention.
            attn_mask (Tensor, optional): (L, L') bool, True = may attend (e.g. block-causal segments), or
                additive; broadcast over the batch and the heads. Not combined with ``is_causal``.
            is_causal (bool): Token (query) i attends to tokens (context tokens) 0..i only; with fewer
                queries L than context tokens L', query i attends to context tokens 0..i + L' - L.

        Returns:
            Tensor: (B, L, C).
        """
        if self.with_cp and self.training and torch.is_grad_enabled():
            return checkpoint(self._forward, x, context, attn_mask, is_causal, use_reentrant=False)
        return self._forward(x, context, attn_mask, is_causal)

    def _forward(self, x: Tensor, context: Optional[Tensor], attn_mask: Optional[Tensor],
                 is_causal: bool) -> Tensor:
        context = None if context is None else self.ln1(context)
        x = x + self.attn(self.ln1(x), context=context, attn_mask=attn_mask, is_causal=is_causal)
        return self.ffn(self.ln2(x), identity=x)

