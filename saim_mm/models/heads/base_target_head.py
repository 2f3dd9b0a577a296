"""What a target is: the contract between ``SAIM`` and its head.

``SAIM`` asks its head for these (and nothing else):

- ``target_channels`` (int): D, the width of one patch's target; the decoder predicts D values a patch;
- ``patch_size`` (int): p, which must equal the encoder's;
- ``loss(pred, images, order, mask)``: the scalar loss of predictions ``pred`` (B, K, D), row t predicting
  patch ``order[:, t]`` of ``images`` (B, C, H, W), over the rows where ``mask`` (B, K) is True (all
  without a mask);
- ``attach(encoder)``: called once when ``SAIM`` is built, before ``target_channels`` is read (a target
  read from the encoder binds to it);
- ``update()``: called once per training step before the order is drawn (an EMA teacher steps here).

A new target subclasses :class:`BaseTargetHead` and writes :meth:`construct_target` (the per-patch target
of the images, in raster order) and :meth:`criterion` (the penalty between predictions and targets); the
base class gathers the targets into the order in one place. See docs/extending.md.
"""
from abc import ABCMeta, abstractmethod
from typing import Optional

import torch
from mmengine.model import BaseModule
from torch import Tensor, nn

from ..utils import gather_tokens


class BaseTargetHead(BaseModule, metaclass=ABCMeta):
    """Base class of the target heads of ``SAIM``.

    Args:
        patch_size (int): Patch size p (the encoder's).
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self, patch_size: int, init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.patch_size = patch_size

    @property
    @abstractmethod
    def target_channels(self) -> int:
        """D, the width of one patch's target."""

    @abstractmethod
    def construct_target(self, images: Tensor) -> Tensor:
        """The target of every patch of ``images`` (B, C, H, W): (B, N, D), patches in raster order."""

    @abstractmethod
    def criterion(self, pred: Tensor, target: Tensor) -> Tensor:
        """The loss (a scalar) between predictions (B, K, D) and their targets (B, K, D)."""

    def attach(self, encoder: nn.Module) -> None:
        """Called once by ``SAIM`` when it is built, with its encoder (``SAIMViT``).

        A target read from the encoder itself (an EMA teacher of it, its patch embeddings) keeps what it
        needs here; targets computed from the images alone need nothing (the default).
        """

    def update(self) -> None:
        """Called by ``SAIM`` once per training step, before the order is drawn and the targets computed.

        A target that follows the student (an EMA teacher) takes its step here; nothing by default.
        """

    def loss(self, pred: Tensor, images: Tensor, order: Optional[Tensor] = None,
             mask: Optional[Tensor] = None) -> Tensor:
        """The loss of ``pred`` (B, K, D) against the targets of ``images`` (B, C, H, W).

        Row t of ``pred`` is compared with the target of patch ``order[:, t]`` (``order`` (B, K), raster
        patch indices); without ``order``, with the target of raster patch t (K = N). With ``mask`` (B, K)
        bool, only the rows where it is True count (e.g. the steps after a prefix): the criterion sees
        them as one (1, M, D) batch.
        """
        target = self.construct_target(images)
        if order is not None:
            target = gather_tokens(target, order)
        if pred.shape != target.shape:
            raise ValueError(f'{type(self).__name__}: predictions of shape {tuple(pred.shape)} for targets of '
                             f'shape {tuple(target.shape)} (B, K, target_channels={self.target_channels}).')
        if mask is not None:
            if mask.shape != pred.shape[:2] or mask.dtype != torch.bool:
                raise ValueError(f'{type(self).__name__}: the loss mask must be bool of shape '
                                 f'{tuple(pred.shape[:2])} (B, K), got {mask.dtype} {tuple(mask.shape)}.')
            pred, target = pred[mask].unsqueeze(0), target[mask].unsqueeze(0)
        return self.criterion(pred, target)
