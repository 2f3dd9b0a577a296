from typing import Optional, Sequence, Tuple, Union

import torch
from mmpretrain.models.utils import resize_pos_embed
from mmpretrain.registry import MODELS
from torch import Tensor

from ..models.backbones import SAIMViT
from .window_attention import WindowRelPosAttention


@MODELS.register_module()
class SAIMDenseViT(SAIMViT):
    """The SAIM encoder as a detection / segmentation backbone (mmdet Mask R-CNN, mmseg UperNet).

    The same parameters as :class:`SAIMViT` (a SAIM pre-training checkpoint loads with
    ``init_cfg=dict(type='Pretrained', checkpoint=..., prefix='backbone.')``), plus, all off by default:

    - multi-level outputs: ``out_indices`` with ``out_type='featmap'`` give one (B, C, H/p, W/p) map per
      listed block (``final_norm=False`` keeps the last one un-normalised like the others);
    - window attention: ``window_size=S > 0`` makes every block attend within S x S windows of the patch
      grid (the grid is zero-padded to a multiple of S and padded keys are masked), except the blocks in
      ``global_attn_indexes``, which attend globally. Windows need ``use_cls_token=False``. Blocks with
      windows or a relative position bias have a :class:`WindowRelPosAttention` (``window_attention.py``);
      the others keep the plain attention;
    - ``use_cls_token=False``: the cls token is not prepended (its parameter stays, frozen, so a SAIM
      checkpoint still loads without missing keys);
    - ``use_rel_pos_bias=True``: a learned relative position bias per block (``layers.i.attn.rel_pos_bias``,
      zero at initialisation, so the pre-trained function is unchanged at the start of fine-tuning);
    - ``drop_path_rate``: stochastic depth, linearly increasing over the blocks (as in mmpretrain).

    The position embedding is resized (bicubic) to any input size that ``patch_size`` divides; a size it
    does not divide raises a ValueError naming the size and the patch size.

    Args:
        window_size (int): Window side in patches for window attention; 0 (default) = global attention.
        global_attn_indexes (Sequence[int]): Blocks that keep global attention when ``window_size > 0``.
        use_rel_pos_bias (bool): Add a zero-initialised relative position bias to every block.
            Defaults to False.
        use_cls_token (bool): Prepend the cls token. Defaults to True.
        out_type (str): ``'featmap'``, ``'cls_token'``, ``'avg_featmap'`` or ``'raw'``. Defaults to
            ``'cls_token'``.
        **kwargs: Arguments of :class:`SAIMViT` (``arch``, ``img_size``, ``patch_size``, ``out_indices``,
            ``final_norm``, ``drop_path_rate``, ``with_cp``, ``init_cfg``, ...).
    """

    def __init__(self,
                 window_size: int = 0,
                 global_attn_indexes: Sequence[int] = (),
                 use_rel_pos_bias: bool = False,
                 use_cls_token: bool = True,
                 out_type: str = 'cls_token',
                 init_cfg: Optional[Union[dict, list]] = None,
                 **kwargs) -> None:
        super().__init__(out_type=out_type, init_cfg=init_cfg, **kwargs)
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
        for i, layer in enumerate(self.layers):
            window = self.block_window(i)
            if window or use_rel_pos_bias:
                span = (self.patch_resolution if window == 0 else (window, window)) if use_rel_pos_bias else None
                layer.set_attention(dict(type=WindowRelPosAttention, window_size=window, rel_pos_span=span,
                                         num_extra_tokens=int(use_cls_token)))

    def block_window(self, index: int) -> int:
        """Window side of block ``index``: 0 for global attention."""
        return 0 if index in self.global_attn_indexes else self.window_size

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """Features of the listed blocks.

        Args:
            x (Tensor): Images (B, 3, H, W), H and W multiples of the patch size.

        Returns:
            tuple[Tensor]: One output per ``out_indices`` entry, formatted by ``out_type``; ``'featmap'``
            gives (B, C, H/p, W/p).
        """
        self._check_input(x, exact=False)
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
        for layer in self.layers:
            if isinstance(layer.attn, WindowRelPosAttention):
                layer.attn.patch_grid = tuple(hw)
        outs = []
        for i, layer in enumerate(self.layers):
            x = layer(x)
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
