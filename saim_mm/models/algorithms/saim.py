from typing import Dict, List, Optional, Union

import torch
from mmpretrain.models.selfsup import BaseSelfSupervisor
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from torch import Tensor

from ..utils import ORDER_MODES, check_order, sample_order


@MODELS.register_module()
class SAIM(BaseSelfSupervisor):
    """SAIM: Stochastic Autoregressive Image Modeling (Qi et al., AAAI 2023).

    Per sample, a generation order ``z`` is drawn; the encoder (``SAIMViT``, content stream) and the
    decoder (``SAIMDecoder``, query stream + prediction head) run in that order with causal attention, and
    ``GaussianPixelLoss`` compares the prediction of every patch ``z_t`` (made from ``z_0..z_{t-1}`` and the
    position of ``z_t``) with its smoothed pixels.

    Args:
        backbone (dict): ``SAIMViT`` config.
        neck (dict): ``SAIMDecoder`` config; ``embed_dims``, ``num_heads``, ``feedforward_channels`` and
            ``patch_size`` default to the encoder's.
        head (dict): ``GaussianPixelLoss`` config.
        order (str): ``'stochastic'`` (the paper) or ``'raster'`` (the ViT-iGPT baseline).
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
        if order not in ORDER_MODES:
            raise ValueError(f'SAIM order must be one of {ORDER_MODES}, got {order!r}.')
        if isinstance(backbone, dict):
            backbone = MODELS.build(backbone)
        if isinstance(neck, dict):
            neck = MODELS.build(self.encoder_defaults(neck, backbone))
        super().__init__(
            backbone=backbone, neck=neck, head=head, data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.order = order
        depth, dec_depth = self.backbone.num_layers, self.neck.num_layers
        if dec_depth and depth % dec_depth:
            raise ValueError(f'neck.num_layers={dec_depth} must divide the encoder depth {depth}; '
                             f'allowed: {[d for d in range(1, depth + 1) if depth % d == 0]}.')
        if dec_depth == 0 and order != 'raster':
            raise ValueError('neck.num_layers=0 (no query stream) needs order="raster": without a query '
                             'stream the model cannot know which patch comes next.')
        for key, value, expected in (('head.patch_size', self.head.patch_size, self.backbone.patch_size),
                                     ('neck.patch_size', self.neck.patch_size, self.backbone.patch_size),
                                     ('neck.embed_dims', self.neck.embed_dims, self.backbone.embed_dims)):
            if value != expected:
                backbone_key = 'backbone.' + key.split('.')[1]
                raise ValueError(f'{key}={value} differs from {backbone_key}={expected}; it must be {expected}.')
        # The position embedding is the fixed sin-cos table; the backbone's final norm is not part of
        # the pre-training forward (the decoder has its own), so both stay frozen here.
        self.backbone.pos_embed.requires_grad_(False)
        if self.backbone.final_norm:
            self.backbone.ln1.requires_grad_(False)

    @staticmethod
    def encoder_defaults(neck: dict, backbone) -> dict:
        """The decoder config with its unset width, heads, MLP width and patch size taken from the encoder."""
        arch = backbone.arch_settings
        defaults = dict(embed_dims=backbone.embed_dims, num_heads=arch['num_heads'],
                        feedforward_channels=arch['feedforward_channels'], patch_size=backbone.patch_size)
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
        """Draw a (B, N) generation order according to ``self.order``."""
        return sample_order(batch_size, self.num_patches, self.order, device)

    def predict_patches(self, inputs: Tensor, order: Tensor) -> Tensor:
        """Predictions (B, N, p*p*3) in generation order: row t predicts patch ``order[:, t]``."""
        hidden_states, query_pos = self.backbone(inputs, order=order)
        return self.neck(hidden_states, query_pos, encoder_layers=self.backbone.layers)

    def loss(self,
             inputs: Union[Tensor, List[Tensor]],
             data_samples: Optional[List[DataSample]] = None,
             order: Optional[Tensor] = None) -> Dict[str, Tensor]:
        """SAIM loss of a batch.

        Args:
            inputs (Tensor | list[Tensor]): Normalised images (B, 3, H, W) (or a one-view list of them).
            data_samples (list[DataSample], optional): Unused.
            order (Tensor, optional): (B, N) generation order; drawn per ``self.order`` when None.

        Returns:
            dict[str, Tensor]: ``{'loss': scalar}``.
        """
        inputs = self._single_view(inputs)
        if order is None:
            order = self.sample_order(inputs.shape[0], inputs.device)
        else:
            check_order(order, inputs.shape[0], self.num_patches)
        pred = self.predict_patches(inputs, order)
        return dict(loss=self.head.loss(pred, inputs, order))
