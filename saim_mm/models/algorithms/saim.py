import inspect
from typing import Dict, List, Optional, Sequence, Union

import torch
from mmpretrain.models.selfsup import BaseSelfSupervisor
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from torch import Tensor

from ...checkpoint import add_checkpoint_filter
from ..heads import BaseTargetHead
from ..necks import BaseDecoder
from ..orders import BaseGenerationOrder, named_orders
from ..utils import PrefixCausalAttention, check_order, segment_masks


@MODELS.register_module()
class SAIM(BaseSelfSupervisor):
    """SAIM: Stochastic Autoregressive Image Modeling (Qi et al., AAAI 2023).

    Per sample, a generation order ``z`` is drawn (the ``order``); the encoder (``backbone``, the content
    stream) runs in that order with causal attention, the decoder (``neck``, the query stream and the
    prediction head) predicts every patch ``z_t`` from ``z_0..z_{t-1}`` and the position of ``z_t``, and
    the target (``head``) gives the loss of those predictions (docs/method.md).

    Each part is chosen by config against a written contract (docs/extending.md):

    - ``order``: a ``BaseGenerationOrder`` (``models/orders/base_order.py``);
    - ``neck``: a ``BaseDecoder`` (``models/necks/base_decoder.py``);
    - ``head``: a ``BaseTargetHead`` (``models/heads/base_target_head.py``);
    - the attention of the blocks: a ``SAIMAttention`` class (``models/utils/attention.py``);
      ``PrefixCausalAttention`` in the encoder gives AIM's prefix (``prefix_range``).

    Args:
        backbone (dict): ``SAIMViT`` config.
        neck (dict): Decoder config (``SAIMDecoder``); the sizes it accepts and leaves unset
            (``embed_dims``, ``num_heads``, ``feedforward_channels``, ``patch_size``, ``context_dims``,
            ``grid``) default to the encoder's, ``out_channels`` to the head's ``target_channels``.
        head (dict): Target config (``GaussianPixelLoss``, ``HOGLoss``, ``FeatureTargetHead`` with a
            teacher, or another ``BaseTargetHead``); attached to the encoder before the decoder is sized.
        order (str | dict): The generation order: the ``name`` of a registered order (``'stochastic'``,
            the paper; ``'raster'``, the ViT-iGPT baseline; ``'spiral'``, ``'centre_out'``,
            ``'checkerboard'``, ``'fixed_random'``, ``'random_segments'``; ``'semantic'``, SemAIM's,
            computed from the images) or a config dict of one (e.g.
            ``dict(type='RandomSegmentOrder', segment=(2, 2))``). Defaults to ``'stochastic'``.
        prefix_range (Sequence[int], optional): ``(lo, hi)``, the inclusive range from which the prefix
            length P of each sample is drawn uniformly when the encoder's blocks use
            ``PrefixCausalAttention`` (AIM: the first P steps see each other, the loss counts steps t >= P
            only); ``hi`` None = N - 1. Defaults to (1, N - 1) with that attention; refused without it.
        data_preprocessor (dict, optional): Defaults to ``SelfSupDataPreprocessor``.
        init_cfg (dict | list, optional): Initialisation config.
    """

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 head: dict,
                 order: str = 'stochastic',
                 prefix_range: Optional[Sequence[Optional[int]]] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        if isinstance(order, str):
            names = named_orders()
            if order not in names:
                raise ValueError(f'SAIM order must be one of {tuple(sorted(names))} or a config dict of a '
                                 f'registered order, got {order!r}.')
            order = dict(type=names[order])
        if isinstance(backbone, dict):
            backbone = MODELS.build(backbone)
        if isinstance(head, dict):
            head = MODELS.build(head)
        if not isinstance(head, BaseTargetHead):
            raise TypeError(f'SAIM head must be a {BaseTargetHead.__name__} ({BaseTargetHead.__module__}), got '
                            f'{type(head).__name__}.')
        # a target read from the encoder (EMA teacher, patch embeddings) binds to it before its width is asked
        head.attach(backbone)
        if isinstance(neck, dict):
            neck = MODELS.build(self.encoder_defaults(neck, backbone, head))
        order_generator = MODELS.build(order, default_args=dict(grid=tuple(backbone.patch_resolution)))
        for key, part, base in (('neck', neck, BaseDecoder),
                                ('order', order_generator, BaseGenerationOrder)):
            if not isinstance(part, base):
                raise TypeError(f'SAIM {key} must be a {base.__name__} ({base.__module__}), got '
                                f'{type(part).__name__}.')
        super().__init__(
            backbone=backbone, neck=neck, head=head, data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.order_generator = order_generator
        # a decoder depth, context_layers or num_predict that does not fit the encoder: an error now
        self.neck.context_indices(self.backbone.num_layers)
        self.neck.num_predictions(self.num_patches)
        if self.neck.num_layers == 0 and not (order_generator.fixed and order_generator.segment_size == 1):
            raise ValueError('neck.num_layers=0 (no query stream) needs a fixed order (the same for every '
                             'sample, one patch per step: raster, spiral, centre_out, checkerboard, '
                             f'fixed_random), got {type(order_generator).__name__}: without a query stream '
                             'the model cannot know which patch comes next.')
        for key, value, expected in (('head.patch_size', self.head.patch_size, self.backbone.patch_size),
                                     ('neck.patch_size', self.neck.patch_size, self.backbone.patch_size)):
            if value != expected:
                backbone_key = 'backbone.' + key.split('.')[1]
                raise ValueError(f'{key}={value} differs from {backbone_key}={expected}; it must be {expected}.')
        self.prefix_range = self.check_prefix_range(prefix_range)
        # The position embedding is the fixed sin-cos table; the backbone's final norm is not part of
        # the pre-training forward (the decoder has its own), so both stay frozen here.
        self.backbone.pos_embed.requires_grad_(False)
        if self.backbone.final_norm:
            self.backbone.ln1.requires_grad_(False)
        add_checkpoint_filter(self)  # state dicts of every layout saim_mm reads load, converted (checkpoint/filter.py)

    def check_prefix_range(self, prefix_range: Optional[Sequence[Optional[int]]]) -> Optional[tuple]:
        """The inclusive range ``(lo, hi)`` of prefix lengths, or None when the blocks are not prefix-causal."""
        prefix = [isinstance(layer.attn, PrefixCausalAttention) for layer in self.backbone.layers]
        types = sorted({type(layer.attn).__name__ for layer in self.backbone.layers})
        if any(prefix) and not all(prefix):
            raise ValueError("backbone.layer_cfgs.attn_cfg.type='PrefixCausalAttention' must be given to every "
                             f'encoder block or to none, got {types}.')
        if not all(prefix):
            if prefix_range is not None:
                raise ValueError(f'prefix_range={prefix_range!r} needs prefix-causal encoder blocks '
                                 "(backbone.layer_cfgs.attn_cfg.type='PrefixCausalAttention'), got "
                                 f'{types}.')
            return None
        if self.order_generator.segment_size > 1:
            raise ValueError("backbone.layer_cfgs.attn_cfg.type='PrefixCausalAttention' (a prefix) does not "
                             f'combine with an order of segments: {type(self.order_generator).__name__} '
                             f'predicts segment_size={self.order_generator.segment_size} steps together; '
                             'use an order of one patch per step.')
        N = self.num_patches
        if prefix_range is None:
            return 1, N - 1
        if not (isinstance(prefix_range, (list, tuple)) and len(prefix_range) == 2
                and isinstance(prefix_range[0], int) and (prefix_range[1] is None or isinstance(prefix_range[1], int))):
            raise ValueError(f'prefix_range must be (lo, hi), two ints (hi may be None = {N - 1}), '
                             f'got {prefix_range!r}.')
        lo, hi = prefix_range[0], N - 1 if prefix_range[1] is None else prefix_range[1]
        if not 1 <= lo <= hi <= N - 1:
            raise ValueError(f'prefix_range={tuple(prefix_range)!r} must satisfy 1 <= lo <= hi <= N - 1 = {N - 1} '
                             f'(the allowed range is [1, {N - 1}] for {N} patches).')
        return lo, hi

    @staticmethod
    def encoder_defaults(neck: dict, backbone, head) -> dict:
        """The decoder config with its unset sizes taken from the encoder (width, heads, MLP width, patch
        size, patch grid) and the head (prediction width): only those the decoder's class accepts."""
        arch = backbone.arch_settings
        defaults = dict(embed_dims=backbone.embed_dims, num_heads=arch['num_heads'],
                        feedforward_channels=arch['feedforward_channels'], patch_size=backbone.patch_size,
                        context_dims=backbone.embed_dims, grid=tuple(backbone.patch_resolution),
                        out_channels=getattr(head, 'target_channels', None))
        neck = dict(neck)
        cls = MODELS.get(neck['type']) if isinstance(neck.get('type'), str) else neck.get('type')
        params = inspect.signature(cls).parameters if isinstance(cls, type) else {}
        takes_any = not params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        for key, value in defaults.items():
            if neck.get(key) is None and (takes_any or key in params):
                neck[key] = value
        return neck

    @staticmethod
    def _single_view(inputs: Union[Tensor, List[Tensor]]) -> Tensor:
        # SelfSupDataPreprocessor hands over a list of views; SAIM uses one.
        return inputs[0] if isinstance(inputs, (list, tuple)) else inputs

    def extract_feat(self, inputs: Union[Tensor, List[Tensor]]):
        """Plain ViT features of the encoder (no order, no masks)."""
        return self.backbone(self._single_view(inputs))

    @property
    def num_patches(self) -> int:
        h, w = self.backbone.patch_resolution
        return h * w

    def sample_order(self, batch_size: int, device: torch.device, images: Optional[Tensor] = None) -> Tensor:
        """Draw a (B, N) generation order from the order generator.

        An order computed from the images (``needs_images``, e.g. the semantic order) is given the images
        (B, 3, H, W) and this model (whose encoder or teacher it may run without gradients).
        """
        if self.order_generator.needs_images:
            if images is None:
                raise ValueError(f'the order {type(self.order_generator).__name__} is computed from the images: '
                                 'sample_order needs images=(B, 3, H, W).')
            return self.order_generator(batch_size, device, images=images, model=self)
        return self.order_generator(batch_size, device)

    @property
    def num_predictions(self) -> int:
        """K: the last K steps of the order are predicted (N unless the decoder predicts partially)."""
        return self.neck.num_predictions(self.num_patches)

    def sample_prefix(self, batch_size: int, device: torch.device) -> Tensor:
        """Draw a prefix length per sample, (B,) long, uniformly from the inclusive ``prefix_range``."""
        if self.prefix_range is None:
            raise ValueError("sample_prefix needs prefix-causal encoder blocks (backbone.layer_cfgs.attn_cfg.type="
                             "'PrefixCausalAttention').")
        lo, hi = self.prefix_range
        return torch.randint(lo, hi + 1, (batch_size, ), device=device)

    def check_prefix_len(self, prefix_len: Tensor, batch_size: int) -> None:
        """Raise a ValueError unless ``prefix_len`` is a (B,) integer tensor with values in ``prefix_range``."""
        if self.prefix_range is None:
            raise ValueError("prefix_len needs prefix-causal encoder blocks (backbone.layer_cfgs.attn_cfg.type="
                             "'PrefixCausalAttention').")
        if tuple(prefix_len.shape) != (batch_size, ) or prefix_len.dtype not in (torch.int32, torch.int64):
            raise ValueError(f'prefix_len must be an integer tensor of shape (B,) = ({batch_size},), got '
                             f'{prefix_len.dtype} {tuple(prefix_len.shape)}.')
        lo, hi = self.prefix_range
        if ((prefix_len < lo) | (prefix_len > hi)).any():
            raise ValueError(f'prefix_len values must lie in prefix_range [{lo}, {hi}], got {prefix_len.tolist()}.')

    def predict_patches(self, inputs: Tensor, order: Tensor, prefix_len: Optional[Tensor] = None) -> Tensor:
        """Predictions (B, K, out) in generation order: row i predicts patch ``order[:, N - K + i]``.

        With ``prefix_len`` (B,) (prefix-causal blocks), the first P steps of the content stream see each
        other; the query stream stays causal.
        """
        if prefix_len is not None:
            self.check_prefix_len(prefix_len, inputs.shape[0])
        return self._predict_patches(inputs, order, prefix_len)

    def _predict_patches(self, inputs: Tensor, order: Tensor, prefix_len: Optional[Tensor]) -> Tensor:
        content_mask = query_mask = None
        if self.order_generator.segment_size > 1:
            content_mask, query_mask = segment_masks(self.num_patches, self.order_generator.segment_size,
                                                     inputs.device)
        if prefix_len is None:
            hidden_states, query_pos = self.backbone(inputs, order=order, attn_mask=content_mask)
        else:
            hidden_states, query_pos = self.backbone(inputs, order=order, prefix_len=prefix_len.to(inputs.device))
        return self.neck(hidden_states, query_pos, encoder_layers=self.backbone.layers, order=order,
                         attn_mask=query_mask)

    def loss(self,
             inputs: Union[Tensor, List[Tensor]],
             data_samples: Optional[List[DataSample]] = None,
             order: Optional[Tensor] = None,
             prefix_len: Optional[Tensor] = None) -> Dict[str, Tensor]:
        """SAIM loss of a batch.

        Args:
            inputs (Tensor | list[Tensor]): Normalised images (B, 3, H, W) (or a one-view list of them).
            data_samples (list[DataSample], optional): Unused.
            order (Tensor, optional): (B, N) generation order; drawn by the order generator when None.
            prefix_len (Tensor, optional): (B,) prefix lengths (prefix-causal blocks only); drawn by
                :meth:`sample_prefix` when None. The loss is the mean over the steps t >= P.

        Returns:
            dict[str, Tensor]: ``{'loss': scalar}``.
        """
        inputs = self._single_view(inputs)
        if self.training:
            self.head.update()  # a teacher that follows the student steps first (the order may read it)
        if order is None:
            order = self.sample_order(inputs.shape[0], inputs.device, images=inputs)
        else:
            check_order(order, inputs.shape[0], self.num_patches)
        if self.prefix_range is None and prefix_len is None:
            pred = self.predict_patches(inputs, order)
            return dict(loss=self.head.loss(pred, inputs, order[:, self.num_patches - pred.shape[1]:]))
        if prefix_len is None:
            prefix_len = self.sample_prefix(inputs.shape[0], inputs.device)
        else:
            self.check_prefix_len(prefix_len, inputs.shape[0])
        pred = self._predict_patches(inputs, order, prefix_len)
        N, K = self.num_patches, pred.shape[1]
        steps = torch.arange(N - K, N, device=pred.device)  # row i of pred is step N - K + i
        counted = steps[None, :] >= prefix_len.to(pred.device)[:, None]  # (B, K): the steps after the prefix
        return dict(loss=self.head.loss(pred, inputs, order[:, N - K:], mask=counted))
