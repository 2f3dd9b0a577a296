from typing import Optional, Sequence, Tuple, Union

import torch
from mmpretrain.models import VisionTransformer
from mmpretrain.models.utils import build_2d_sincos_position_embedding, resize_pos_embed, to_2tuple
from mmpretrain.registry import MODELS
from torch import Tensor

from ..utils import RelativePositionBias, causal_block_forward, dense_block_forward, gather_tokens


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

    For dense tasks (mmdet / mmseg) the plain forward also offers, all off by default:

    - multi-level outputs: ``out_indices`` with ``out_type='featmap'`` give one (B, C, H/p, W/p) map per
      listed block (``final_norm=False`` keeps the last one un-normalised like the others);
    - window attention: ``window_size=S > 0`` makes every block attend within S x S windows of the patch
      grid (the grid is zero-padded to a multiple of S and padded keys are masked), except the blocks in
      ``global_attn_indexes``, which attend globally. Windows need ``use_cls_token=False``;
    - ``use_cls_token=False``: the cls token is not prepended (its parameter stays, frozen, so a SAIM
      checkpoint still loads without missing keys);
    - ``use_rel_pos_bias=True``: a learned relative position bias per block (``layers.i.attn.rel_pos_bias``,
      zero at initialisation, so the pre-trained function is unchanged at the start of fine-tuning);
    - ``drop_path_rate``: stochastic depth, linearly increasing over the blocks (as in mmpretrain).

    The position embedding is resized (bicubic) to any input size that ``patch_size`` divides; a size it
    does not divide raises a ValueError naming the size and the patch size.

    Args:
        arch (str | dict): ViT architecture, as in :class:`VisionTransformer`. Defaults to ``'b'``.
        img_size (int | tuple): Input size. Both sides must be multiples of ``patch_size``.
        patch_size (int): Patch size p. Defaults to 16.
        out_type (str): Output of the plain (unordered) forward. Defaults to ``'cls_token'``.
        window_size (int): Window side in patches for window attention; 0 (default) = global attention.
        global_attn_indexes (Sequence[int]): Blocks that keep global attention when ``window_size > 0``.
        use_rel_pos_bias (bool): Add a zero-initialised relative position bias to every block.
            Defaults to False.
        use_cls_token (bool): Prepend the cls token in the plain forward. Defaults to True.
        init_cfg (dict | list, optional): Initialisation config.
        **kwargs: Other arguments of :class:`VisionTransformer` (``out_indices``, ``drop_path_rate``,
            ``final_norm``, ...).
    """

    def __init__(self,
                 arch: Union[str, dict] = 'b',
                 img_size: Union[int, Sequence[int]] = 224,
                 patch_size: int = 16,
                 out_type: str = 'cls_token',
                 window_size: int = 0,
                 global_attn_indexes: Sequence[int] = (),
                 use_rel_pos_bias: bool = False,
                 use_cls_token: bool = True,
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
        self._setup_dense(window_size, global_attn_indexes, use_rel_pos_bias, use_cls_token, out_type)

    def _setup_dense(self, window_size: int, global_attn_indexes: Sequence[int], use_rel_pos_bias: bool,
                     use_cls_token: bool, out_type: str) -> None:
        """Check and store the dense-task options; add the relative position biases."""
        n = self.num_layers
        if not isinstance(window_size, int) or window_size < 0:
            raise ValueError(f'window_size must be an int >= 0 (0 = global attention), got {window_size!r}.')
        global_attn = sorted({i % n if -n <= i < n else i for i in global_attn_indexes})
        bad = [i for i in global_attn if not 0 <= i < n]
        if bad:
            raise ValueError(f'global_attn_indexes {list(global_attn_indexes)} name blocks outside the '
                             f'{n} blocks of this ViT (valid: 0..{n - 1} or negative).')
        if window_size and use_cls_token:
            raise ValueError('window attention (window_size > 0) needs use_cls_token=False: the cls token '
                             'belongs to no window.')
        if not use_cls_token and out_type == 'cls_token':
            raise ValueError("out_type='cls_token' needs use_cls_token=True.")
        self.window_size = window_size
        self.global_attn_indexes = tuple(global_attn)
        self.use_rel_pos_bias = use_rel_pos_bias
        self.use_cls_token = use_cls_token
        if not use_cls_token:
            # Unused by the forward; frozen so that distributed training finds no parameter without a gradient.
            self.cls_token.requires_grad_(False)
        if use_rel_pos_bias:
            for i, layer in enumerate(self.layers):
                span = self.patch_resolution if self.block_window(i) == 0 else (window_size, window_size)
                layer.attn.rel_pos_bias = RelativePositionBias(layer.attn.num_heads, span)

    def block_window(self, index: int) -> int:
        """Window side of block ``index``: 0 for global attention."""
        return 0 if index in self.global_attn_indexes else self.window_size

    @property
    def is_plain(self) -> bool:
        """True when the plain forward is mmpretrain's ViT forward (no dense-task option is on)."""
        return self.window_size == 0 and not self.use_rel_pos_bias and self.use_cls_token

    def init_weights(self) -> None:
        """Sin-cos position embedding, xavier-uniform patch projection, cls token ~ N(0, 0.02).

        With ``init_cfg=dict(type='Pretrained', checkpoint=PATH, prefix='backbone.')`` the encoder is loaded
        from a SAIM pre-training checkpoint instead (the relative position biases, absent there, stay zero).
        """
        if isinstance(self.init_cfg, dict) and self.init_cfg.get('type') == 'Pretrained':
            if not self.init_cfg.get('checkpoint'):
                raise ValueError(
                    'SAIMViT init_cfg is Pretrained but names no checkpoint: give the SAIM pre-training '
                    'checkpoint, e.g. --cfg-options model.backbone.init_cfg.checkpoint=work_dirs/vitb_800e/'
                    'epoch_800.pth (or set init_cfg=None to start from random weights).')
            super().init_weights()
            return
        super().init_weights()
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
            raise ValueError(f'Input image size {H}x{W} is not divisible by the patch size {p}: both sides '
                             f'must be multiples of {p} (pad the input, e.g. size_divisor={p}).')
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
            return super().forward(x) if self.is_plain else self._dense_forward(x)
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

    def _dense_forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """The plain forward with window attention, relative position bias and/or without the cls token.

        Args:
            x (Tensor): Images (B, 3, H, W), H and W multiples of the patch size.

        Returns:
            tuple[Tensor]: One output per ``out_indices`` entry, formatted by ``out_type``; ``'featmap'``
            gives (B, C, H/p, W/p).
        """
        B = x.shape[0]
        x, hw = self.patch_embed(x)
        pos = resize_pos_embed(self.pos_embed, self.patch_resolution, hw, mode=self.interpolate_mode,
                               num_extra_tokens=self.num_extra_tokens)
        x = x + pos[:, self.num_extra_tokens:]
        extra = 0
        if self.use_cls_token:
            x = torch.cat([(self.cls_token + pos[:, :1]).expand(B, -1, -1), x], dim=1)
            extra = 1
        x = self.pre_norm(self.drop_after_pos(x))
        outs = []
        for i, layer in enumerate(self.layers):
            x = dense_block_forward(layer, x, hw, window=self.block_window(i), num_extra_tokens=extra,
                                    rel_pos_bias=getattr(layer.attn, 'rel_pos_bias', None))
            if i == len(self.layers) - 1 and self.final_norm:
                x = self.ln1(x)
            if i in self.out_indices:
                outs.append(self._format_dense_output(x, hw, extra))
        return tuple(outs)

    def _format_dense_output(self, x: Tensor, hw: Tuple[int, int], extra: int) -> Tensor:
        if self.out_type == 'raw':
            return x
        if self.out_type == 'cls_token':
            return x[:, 0]
        patches = x[:, extra:]
        if self.out_type == 'featmap':
            return patches.reshape(x.shape[0], *hw, -1).permute(0, 3, 1, 2)
        return self.ln2(patches.mean(dim=1))  # 'avg_featmap'
