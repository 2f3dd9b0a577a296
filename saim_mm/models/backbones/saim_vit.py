import inspect
from typing import Optional, Sequence, Union

import numpy as np
import torch
from mmengine.model import ModuleList
from mmpretrain.models import VisionTransformer
from mmpretrain.models.utils import build_2d_sincos_position_embedding, to_2tuple
from mmpretrain.registry import MODELS
from torch import Tensor

from ...checkpoint import add_checkpoint_filter, load_pretrained
from ..utils import PrefixCausalAttention, SAIMTransformerLayer, gather_tokens

# VisionTransformer's defaults, for rebuilding its blocks with the arguments it built them from
VIT_DEFAULTS = {name: p.default for name, p in inspect.signature(VisionTransformer.__init__).parameters.items()
                if p.default is not inspect.Parameter.empty}
DENSE_OPTIONS = ('window_size', 'global_attn_indexes', 'use_rel_pos_bias', 'use_cls_token')


@MODELS.register_module()
class SAIMViT(VisionTransformer):
    """Vision Transformer for SAIM: the content stream (encoder), and the plain ViT it transfers as.

    A subclass of mmpretrain's :class:`VisionTransformer` with the same parameter names, so its state dict
    loads into mmpretrain, mmdet and mmseg ViTs without renaming. Its blocks are
    :class:`SAIMTransformerLayer` s. Called without an order it is mmpretrain's ViT. Called with a
    generation order it runs the content stream of SAIM: tokens are permuted into the order and every block
    attends causally (patch ``z_t`` sees the cls token and ``z_0..z_t``; the cls token sees itself), which
    equals the paper's content mask (docs/method.md). With :class:`PrefixCausalAttention` blocks
    (``layer_cfgs=dict(attn_cfg=dict(type='PrefixCausalAttention'))``) and a prefix length per sample, the
    first P steps see each other (AIM's prefix); the plain forward stays full attention.

    Initialisation follows MAE: a fixed 2-D sin-cos position embedding with a zero cls slot, xavier-uniform
    patch projection, cls token ~ N(0, 0.02). The detection / segmentation variant (windows, relative
    position bias, no cls token) is ``SAIMDenseViT`` in ``saim_mm/dense/``.

    Args:
        arch (str | dict): ViT architecture, as in :class:`VisionTransformer`. Defaults to ``'b'``.
        img_size (int | tuple): Input size. Both sides must be multiples of ``patch_size``.
        patch_size (int): Patch size p. Defaults to 16.
        out_type (str): Output of the plain (unordered) forward. Defaults to ``'cls_token'``.
        with_cp (bool): Activation checkpointing in every block (training only). Defaults to False.
        init_cfg (dict | list, optional): Initialisation config.
        **kwargs: Other arguments of :class:`VisionTransformer` (``out_indices``, ``drop_path_rate``,
            ``final_norm``, ``layer_cfgs``, ...).
    """

    def __init__(self,
                 arch: Union[str, dict] = 'b',
                 img_size: Union[int, Sequence[int]] = 224,
                 patch_size: int = 16,
                 out_type: str = 'cls_token',
                 with_cp: bool = False,
                 init_cfg: Optional[Union[dict, list]] = None,
                 **kwargs) -> None:
        dense = sorted(set(kwargs) & set(DENSE_OPTIONS))
        if dense:
            raise TypeError(f'SAIMViT got {dense}: these are options of SAIMDenseViT, the detection / '
                            "segmentation backbone (type='mmpretrain.SAIMDenseViT').")
        size = to_2tuple(img_size)
        if size[0] % patch_size or size[1] % patch_size:
            side = size[0] if size[0] % patch_size else size[1]
            near = sorted({max(side // patch_size, 1) * patch_size, (side // patch_size + 1) * patch_size})
            raise ValueError(f'img_size {tuple(size)} is not divisible by patch_size {patch_size}: '
                             f'both sides must be multiples of the patch size (e.g. {" or ".join(map(str, near))}).')
        vit_kwargs = dict(kwargs)
        if 'layer_cfgs' in kwargs:  # mmpretrain's blocks take no attn_cfg: it goes to the SAIM blocks only
            vit_kwargs['layer_cfgs'] = self._without_attn_cfg(kwargs['layer_cfgs'])
        super().__init__(arch=arch, img_size=img_size, patch_size=patch_size, out_type=out_type,
                         with_cls_token=True, init_cfg=init_cfg, **vit_kwargs)
        self.patch_size = patch_size
        self.layers = self._saim_layers(dict(VIT_DEFAULTS, **kwargs), with_cp)
        add_checkpoint_filter(self)  # state dicts of every layout saim_mm reads load, converted (checkpoint/filter.py)
        if self.frozen_stages > 0:
            self._freeze_stages()

    @staticmethod
    def _without_attn_cfg(layer_cfgs: Union[dict, Sequence[dict]]) -> Union[dict, list]:
        """``layer_cfgs`` (one dict, or one per block) without the ``attn_cfg`` key."""
        if isinstance(layer_cfgs, dict):
            return {key: value for key, value in layer_cfgs.items() if key != 'attn_cfg'}
        return [{key: value for key, value in cfg.items() if key != 'attn_cfg'} for cfg in layer_cfgs]

    def _saim_layers(self, args: dict, with_cp: bool) -> ModuleList:
        """mmpretrain's blocks as :class:`SAIMTransformerLayer` s: the same arguments and weights.

        mmpretrain's ViT builds ``TransformerEncoderLayer`` s with no way to choose the class; the blocks
        are rebuilt from the arguments it used and take over its weights, under a forked random stream so
        that a seeded run initialises every later module exactly as with mmpretrain's blocks.
        """
        layer_cfgs = args['layer_cfgs']
        if isinstance(layer_cfgs, dict):
            layer_cfgs = [layer_cfgs] * self.num_layers
        drop_path = np.linspace(0, args['drop_path_rate'], self.num_layers)
        layers = ModuleList()
        with torch.random.fork_rng(devices=[]):
            for i, built in enumerate(self.layers):
                cfg = dict(
                    embed_dims=self.embed_dims,
                    num_heads=self.arch_settings['num_heads'],
                    feedforward_channels=self.arch_settings['feedforward_channels'],
                    layer_scale_init_value=args['layer_scale_init_value'],
                    drop_rate=args['drop_rate'],
                    drop_path_rate=drop_path[i],
                    qkv_bias=args['qkv_bias'],
                    norm_cfg=args['norm_cfg'])
                cfg.update(layer_cfgs[i])
                layer = SAIMTransformerLayer(**cfg, with_cp=with_cp)
                layer.load_state_dict(built.state_dict())
                layers.append(layer)
        return layers

    def init_weights(self) -> None:
        """Sin-cos position embedding, xavier-uniform patch projection, cls token ~ N(0, 0.02).

        With ``init_cfg=dict(type='Pretrained', checkpoint=PATH, prefix='backbone.')`` the encoder is loaded
        instead, from a file of any layout saim_mm reads (``checkpoint_filter_fn``; the relative position
        biases, absent there, stay zero).
        """
        cfg = self.init_cfg
        if isinstance(cfg, dict) and cfg.get('type') == 'Pretrained':
            if not cfg.get('checkpoint'):
                raise ValueError(
                    'SAIMViT init_cfg is Pretrained but names no checkpoint: give the SAIM pre-training '
                    'checkpoint, e.g. --cfg-options model.backbone.init_cfg.checkpoint=work_dirs/vitb_800e/'
                    'epoch_800.pth (or set init_cfg=None to start from random weights).')
            if '://' in str(cfg['checkpoint']):  # URLs: mmengine's PretrainedInit
                super().init_weights()
                return
            # A local file is read here: mmengine's PretrainedInit takes the keys under ``prefix`` before any
            # conversion, and a timm or authors' file has none. The sub-modules initialise as they would there.
            self.init_cfg = None
            try:
                super(VisionTransformer, self).init_weights()
            finally:
                self.init_cfg = cfg
            load_pretrained(self, cfg['checkpoint'], cfg.get('prefix'))
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

    @property
    def prefix_causal(self) -> bool:
        """True when every block's attention is :class:`PrefixCausalAttention` (AIM's prefix)."""
        return all(isinstance(layer.attn, PrefixCausalAttention) for layer in self.layers)

    def forward(self, x: Tensor, order: Optional[Tensor] = None, attn_mask: Optional[Tensor] = None,
                prefix_len: Optional[Tensor] = None):
        """Plain ViT features, or the content stream in generation order.

        Args:
            x (Tensor): Images (B, 3, H, W).
            order (Tensor, optional): Generation order (B, N). None gives the plain ViT forward.
            attn_mask (Tensor, optional): (N+1, N+1) bool mask of the content stream in generation order
                (block-causal segments); None = the causal mask.
            prefix_len (Tensor, optional): (B,) long prefix length P of each sample (blocks with
                :class:`PrefixCausalAttention` only): step t sees ``z_0..z_{max(t, P-1)}``; None = causal.

        Returns:
            Without ``order``: the outputs of :class:`VisionTransformer`. With ``order``: a tuple
            ``(hidden_states, query_pos)`` where ``hidden_states`` holds the output of every block,
            each (B, N+1, C) over ``[cls, s_{z_0}, ..., s_{z_{N-1}}]`` (no final norm), and ``query_pos``
            (B, N, C) is the position embedding in generation order (the query stream's input).
        """
        if prefix_len is not None:
            if order is None:
                raise ValueError('SAIMViT prefix_len applies to the content stream: give an order too (the '
                                 'plain ViT forward is full attention).')
            if not self.prefix_causal:
                types = sorted({type(layer.attn).__name__ for layer in self.layers})
                raise ValueError(f'SAIMViT prefix_len needs backbone.layer_cfgs.attn_cfg.type='
                                 f"'PrefixCausalAttention' in every block, got {types}.")
            if attn_mask is not None:
                raise ValueError('SAIMViT takes prefix_len or attn_mask (segments), not both.')
            if tuple(prefix_len.shape) != (x.shape[0], ):
                raise ValueError(f'SAIMViT prefix_len must have shape (B,) = ({x.shape[0]},), got '
                                 f'{tuple(prefix_len.shape)}.')
        if order is None:
            self._check_input(x, exact=False)
            return super().forward(x)
        self._check_input(x, exact=True)
        B = x.shape[0]
        pos = self.pos_embed[:, self.num_extra_tokens:]
        tokens = gather_tokens(self.patch_embed(x)[0] + pos, order)
        cls = (self.cls_token + self.pos_embed[:, :1]).expand(B, -1, -1)
        h = self.pre_norm(self.drop_after_pos(torch.cat([cls, tokens], dim=1)))
        if prefix_len is not None:  # one mask (or block mask) for every block
            attn = self.layers[0].attn
            attn_mask = attn.prefix_mask(prefix_len, h.shape[1], h.device, block_sparse=attn.block_sparse)
        hidden_states = []
        for layer in self.layers:
            h = layer(h, attn_mask=attn_mask, is_causal=attn_mask is None)
            hidden_states.append(h)
        return tuple(hidden_states), gather_tokens(pos, order)
