from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F
from mmpretrain.models.heads import ClsHead
from mmpretrain.registry import MODELS
from torch import Tensor, nn


@MODELS.register_module()
class AttentiveProbeHead(ClsHead):
    """Attentive probe (AIM's protocol): one learned query cross-attends to the frozen encoder's patch tokens.

    ``logits = fc(bn(attention(query, k(tokens), v(tokens))))``: multi-head attention of one learned query
    token (no projection of its own: it is a free parameter) over keys and values projected from the
    tokens, BatchNorm1d without affine parameters, a Linear classifier. mmpretrain 1.2.0 has no such head:
    its classification heads take a pooled (B, C) feature, ``CSRAClsHead`` is class-wise spatial attention
    for multi-label tasks, and its one attention pooling (``AttentionPool2d`` inside Chinese-CLIP's ResNet)
    uses the mean token as the query and a positional embedding of one fixed grid.

    The input is the backbone's output tuple, of which the last element is used, or that tensor itself
    (e.g. cached features): a (B, C, H, W) feature map (mmpretrain ``VisionTransformer(out_type='featmap')``:
    the patch tokens after the final norm) or (B, L, C) tokens (``out_type='raw'``; its first
    ``num_extra_tokens`` tokens, e.g. the cls token, are dropped).

    Args:
        num_classes (int): Number of classes.
        in_channels (int): Token width C.
        num_heads (int): Attention heads; must divide C. Defaults to 12.
        num_extra_tokens (int): Leading tokens of a (B, L, C) input that are not patch tokens (1 for the cls
            token of ``out_type='raw'``). Defaults to 0.
        qkv_bias (bool): Bias in the key/value projection. Defaults to True.
        loss (dict): Classification loss. Defaults to ``dict(type='CrossEntropyLoss')``.
        init_cfg (dict | list, optional): Initialisation of the Linear layers; the query is drawn from a
            truncated normal (std 0.02) at construction. Defaults to TruncNormal std 0.02.
        **kwargs: Other arguments of mmpretrain's ``ClsHead`` (``topk``, ``cal_acc``).
    """

    def __init__(self, num_classes: int, in_channels: int, num_heads: int = 12, num_extra_tokens: int = 0,
                 qkv_bias: bool = True, loss: dict = dict(type='CrossEntropyLoss', loss_weight=1.0),
                 init_cfg: Optional[Union[dict, list]] = dict(type='TruncNormal', layer='Linear', std=0.02),
                 **kwargs) -> None:
        super().__init__(loss=loss, init_cfg=init_cfg, **kwargs)
        if in_channels % num_heads:
            raise ValueError(f'num_heads={num_heads} must divide in_channels={in_channels}.')
        if num_extra_tokens < 0:
            raise ValueError(f'num_extra_tokens must be >= 0, got {num_extra_tokens}.')
        self.num_classes, self.in_channels = num_classes, in_channels
        self.num_heads, self.num_extra_tokens = num_heads, num_extra_tokens
        self.query = nn.Parameter(nn.init.trunc_normal_(torch.empty(1, 1, in_channels), std=0.02))
        self.kv = nn.Linear(in_channels, 2 * in_channels, bias=qkv_bias)
        self.bn = nn.BatchNorm1d(in_channels, affine=False, eps=1e-6)
        self.fc = nn.Linear(in_channels, num_classes)

    def tokens(self, feats: Union[Tensor, Sequence[Tensor]]) -> Tensor:
        """(B, L, C) patch tokens of a (B, C, H, W) map or of (B, L + num_extra_tokens, C) tokens."""
        x = feats[-1] if isinstance(feats, (tuple, list)) else feats
        if x.dim() == 4:
            x = x.flatten(2).transpose(1, 2)
        elif x.dim() == 3:
            x = x[:, self.num_extra_tokens:]
        else:
            raise ValueError(f'AttentiveProbeHead takes (B, C, H, W) feature maps or (B, L, C) tokens, got shape '
                             f'{tuple(x.shape)}.')
        if x.size(-1) != self.in_channels or x.size(1) == 0:
            raise ValueError(f'AttentiveProbeHead(in_channels={self.in_channels}, num_extra_tokens='
                             f'{self.num_extra_tokens}) got {tuple(x.shape)} patch tokens; expected (B, L > 0, '
                             f'{self.in_channels}).')
        return x

    def pre_logits(self, feats: Union[Tensor, Sequence[Tensor]]) -> Tensor:
        """(B, C) pooled and normalised features (the input of the classifier)."""
        x = self.tokens(feats)
        B, L, C = x.shape
        head_dims = C // self.num_heads
        k, v = self.kv(x).reshape(B, L, 2, self.num_heads, head_dims).permute(2, 0, 3, 1, 4)  # (B, h, L, d)
        q = self.query.to(k.dtype).reshape(1, self.num_heads, 1, head_dims).expand(B, -1, -1, -1)
        pooled = F.scaled_dot_product_attention(q, k, v)  # (B, h, 1, d)
        return self.bn(pooled.reshape(B, C))

    def forward(self, feats: Union[Tensor, Sequence[Tensor]]) -> Tensor:
        """(B, num_classes) logits."""
        return self.fc(self.pre_logits(feats))
