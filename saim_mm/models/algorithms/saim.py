from typing import Dict, List, Optional, Union

import torch
from mmpretrain.models.selfsup import BaseSelfSupervisor
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from torch import Tensor

from ..orders import ORDER_TYPES
from ..utils import check_order, segment_masks


@MODELS.register_module()
class SAIM(BaseSelfSupervisor):
    """SAIM: Stochastic Autoregressive Image Modeling (Qi et al., AAAI 2023).

    Per sample, a generation order ``z`` is drawn (``models/orders/``); the encoder (``SAIMViT``, content
    stream) and the decoder (``SAIMDecoder``, query stream + prediction head) run in that order with causal
    attention, and the head (``GaussianPixelLoss``, or another target) compares the prediction of every
    patch ``z_t`` (made from ``z_0..z_{t-1}`` and the position of ``z_t``) with its target.

    Args:
        backbone (dict): ``SAIMViT`` config.
        neck (dict): ``SAIMDecoder`` config; ``embed_dims``, ``num_heads``, ``feedforward_channels``,
            ``patch_size`` and ``context_dims`` default to the encoder's, ``out_channels`` to the head's
            ``target_channels``.
        head (dict): ``GaussianPixelLoss`` (or another target head with ``loss(pred, images, order)``).
        order (str | dict): the generation order: a name of ``ORDER_TYPES`` (``'stochastic'``, the paper;
            ``'raster'``, the ViT-iGPT baseline; ``'spiral'``, ``'centre_out'``, ``'checkerboard'``,
            ``'fixed_random'``, ``'random_segments'``) or a config dict of a registered order
            (e.g. ``dict(type='RandomSegmentOrder', segment=(2, 2))``).
        data_preprocessor (dict, optional): Defaults to ``SelfSupDataPreprocessor``.
        init_cfg (dict | list, optional): Initialisation config.
    """

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 head: dict,
                 order: str = 'stochastic',
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        if isinstance(order, str):
            if order not in ORDER_TYPES:
                raise ValueError(f'SAIM order must be one of {tuple(ORDER_TYPES)} or a config dict of a '
                                 f'registered order, got {order!r}.')
            order = dict(type=ORDER_TYPES[order])
        if isinstance(backbone, dict):
            backbone = MODELS.build(backbone)
        if isinstance(head, dict):
            head = MODELS.build(head)
        if isinstance(neck, dict):
            neck = MODELS.build(self.encoder_defaults(neck, backbone, head))
        order_generator = MODELS.build(order, default_args=dict(grid=tuple(backbone.patch_resolution)))
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
        # The position embedding is the fixed sin-cos table; the backbone's final norm is not part of
        # the pre-training forward (the decoder has its own), so both stay frozen here.
        self.backbone.pos_embed.requires_grad_(False)
        if self.backbone.final_norm:
            self.backbone.ln1.requires_grad_(False)

    @staticmethod
    def encoder_defaults(neck: dict, backbone, head) -> dict:
        """The decoder config with its unset sizes taken from the encoder (width, heads, MLP width, patch
        size, patch grid) and the head (prediction width)."""
        arch = backbone.arch_settings
        defaults = dict(embed_dims=backbone.embed_dims, num_heads=arch['num_heads'],
                        feedforward_channels=arch['feedforward_channels'], patch_size=backbone.patch_size,
                        context_dims=backbone.embed_dims, grid=tuple(backbone.patch_resolution),
                        out_channels=getattr(head, 'target_channels', None))
        neck = dict(neck)
        for key, value in defaults.items():
            if neck.get(key) is None:
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

    def sample_order(self, batch_size: int, device: torch.device) -> Tensor:
        """Draw a (B, N) generation order from the order generator."""
        return self.order_generator(batch_size, device)

    @property
    def num_predictions(self) -> int:
        """K: the last K steps of the order are predicted (N unless the decoder predicts partially)."""
        return self.neck.num_predictions(self.num_patches)

    def predict_patches(self, inputs: Tensor, order: Tensor) -> Tensor:
        """Predictions (B, K, out) in generation order: row i predicts patch ``order[:, N - K + i]``."""
        content_mask = query_mask = None
        if self.order_generator.segment_size > 1:
            content_mask, query_mask = segment_masks(self.num_patches, self.order_generator.segment_size,
                                                     inputs.device)
        hidden_states, query_pos = self.backbone(inputs, order=order, attn_mask=content_mask)
        return self.neck(hidden_states, query_pos, encoder_layers=self.backbone.layers, order=order,
                         attn_mask=query_mask)

    def loss(self,
             inputs: Union[Tensor, List[Tensor]],
             data_samples: Optional[List[DataSample]] = None,
             order: Optional[Tensor] = None) -> Dict[str, Tensor]:
        """SAIM loss of a batch.

        Args:
            inputs (Tensor | list[Tensor]): Normalised images (B, 3, H, W) (or a one-view list of them).
            data_samples (list[DataSample], optional): Unused.
            order (Tensor, optional): (B, N) generation order; drawn by the order generator when None.

        Returns:
            dict[str, Tensor]: ``{'loss': scalar}``.
        """
        inputs = self._single_view(inputs)
        if order is None:
            order = self.sample_order(inputs.shape[0], inputs.device)
        else:
            check_order(order, inputs.shape[0], self.num_patches)
        pred = self.predict_patches(inputs, order)
        return dict(loss=self.head.loss(pred, inputs, order[:, self.num_patches - pred.shape[1]:]))
