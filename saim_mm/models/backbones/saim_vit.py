from typing import Optional, Sequence, Tuple, Union

import torch
from mmpretrain.models import VisionTransformer
from mmpretrain.models.utils import build_2d_sincos_position_embedding, to_2tuple
from mmpretrain.registry import MODELS
from torch import Tensor

from ..utils import causal_block_forward, gather_tokens


@MODELS.register_module()
class SAIMViT(VisionTransformer):
    """Vision Transformer for SAIM: the content stream (encoder).

    A subclass of mmpretrain's :class:`VisionTransformer` with the same parameter names, so its state dict
    loads into mmpretrain, mmdet and mmseg ViTs without renaming. Called without an order it is that ViT.
    Called with a generation order it runs the content stream of SAIM: tokens are permuted into the order
    and every block attends causally (patch ``z_t`` sees the cls token and ``z_0..z_t``; the cls token sees
    itself), which equals the paper's content mask (DESIGN §2).

    Initialisation follows MAE: a fixed 2-D sin-cos position embedding with a zero cls slot, xavier-uniform
    patch projection, cls token ~ N(0, 0.02).

    Args:
        arch (str | dict): ViT architecture, as in :class:`VisionTransformer`. Defaults to ``'b'``.
        img_size (int | tuple): Input size. Both sides must be multiples of ``patch_size``.
        patch_size (int): Patch size p. Defaults to 16.
        out_type (str): Output of the plain (unordered) forward. Defaults to ``'cls_token'``.
        init_cfg (dict | list, optional): Initialisation config.
        **kwargs: Other arguments of :class:`VisionTransformer`.
    """

    def __init__(self,
                 arch: Union[str, dict] = 'b',
                 img_size: Union[int, Sequence[int]] = 224,
                 patch_size: int = 16,
                 out_type: str = 'cls_token',
                 init_cfg: Optional[Union[dict, list]] = None,
                 **kwargs) -> None:
        size = to_2tuple(img_size)
        if size[0] % patch_size or size[1] % patch_size:
            side = size[0] if size[0] % patch_size else size[1]
            near = sorted({max(side // patch_size, 1) * patch_size, (side // patch_size + 1) * patch_size})
            raise ValueError(f'img_size {tuple(size)} is not divisible by patch_size {patch_size}: '
                             f'both sides must be multiples of the patch size (e.g. {" or ".join(map(str, near))}).')
        super().__init__(
            arch=arch,
            img_size=img_size,
            patch_size=patch_size,
            out_type=out_type,
            with_cls_token=True,
            init_cfg=init_cfg,
            **kwargs)
        self.patch_size = patch_size

    def init_weights(self) -> None:
        """Sin-cos position embedding, xavier-uniform patch projection, cls token ~ N(0, 0.02)."""
        super().init_weights()
        if isinstance(self.init_cfg, dict) and self.init_cfg.get('type') == 'Pretrained':
            return
        pos_embed = build_2d_sincos_position_embedding(
            self.patch_resolution, self.embed_dims, cls_token=True)
        self.pos_embed.data.copy_(pos_embed)
        w = self.patch_embed.projection.weight.data
        torch.nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        torch.nn.init.normal_(self.cls_token, std=.02)

    def _check_input(self, x: Tensor, exact: bool) -> None:
        H, W = x.shape[-2:]
        p = self.patch_size
        if H % p or W % p:
            raise ValueError(f'Input image size {H}x{W} is not divisible by the patch size {p}.')
        if exact and (H // p, W // p) != tuple(self.patch_resolution):
            raise ValueError(f'SAIM pre-training needs images of img_size '
                             f'{self.patch_resolution[0] * p}x{self.patch_resolution[1] * p} '
                             f'(the fixed position embedding), got {H}x{W}.')

    def forward(self, x: Tensor, order: Optional[Tensor] = None):
        """Plain ViT features, or the content stream in generation order.

        Args:
            x (Tensor): Images (B, 3, H, W).
            order (Tensor, optional): Generation order (B, N). None gives the plain ViT forward.

        Returns:
            Without ``order``: the outputs of :class:`VisionTransformer`. With ``order``: a tuple
            ``(hidden_states, query_pos)`` where ``hidden_states`` holds the output of every block,
            each (B, N+1, C) over ``[cls, s_{z_0}, ..., s_{z_{N-1}}]`` (no final norm), and ``query_pos``
            (B, N, C) is the position embedding in generation order (the query stream's input).
        """
        if order is None:
            self._check_input(x, exact=False)
            return super().forward(x)
        self._check_input(x, exact=True)
        B = x.shape[0]
        pos = self.pos_embed[:, self.num_extra_tokens:]
        tokens = gather_tokens(self.patch_embed(x)[0] + pos, order)
        cls = (self.cls_token + self.pos_embed[:, :1]).expand(B, -1, -1)
        h = self.pre_norm(self.drop_after_pos(torch.cat([cls, tokens], dim=1)))
        hidden_states = []
        for layer in self.layers:
            h = causal_block_forward(layer, h)
            hidden_states.append(h)
        return tuple(hidden_states), gather_tokens(pos, order)
