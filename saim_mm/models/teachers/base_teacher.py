"""What a teacher is: the frozen network whose patch features a ``FeatureTargetHead`` predicts.

A teacher gives, for images (B, 3, H, W), features (B, N, D) of their N patches in raster order (no cls
token), computed without gradients. It never trains: it stays in eval mode whatever ``train()`` asks, and
its weights are buffers, not parameters, so that no optimizer built from the model (mmengine's default
constructor adds every parameter, ``requires_grad=False`` ones included) holds them.
"""
from abc import ABCMeta, abstractmethod
from typing import Optional

import torch
from mmengine.model import BaseModule
from mmpretrain.models.utils import resize_pos_embed
from torch import Tensor, nn


def parameters_to_buffers(module: nn.Module, persistent: bool = True) -> nn.Module:
    """Turn every parameter of ``module`` (recursively) into a buffer of the same name and value.

    The module computes as before (a layer reads ``self.weight`` whether it is a parameter or a buffer), but
    ``module.parameters()`` is empty. ``persistent=False`` keeps the buffers out of the state dict.
    """
    for sub in module.modules():
        for name, param in list(sub._parameters.items()):
            if param is None:
                continue
            del sub._parameters[name]
            sub.register_buffer(name, param.detach().requires_grad_(False), persistent=persistent)
    return module


def check_block(block: int, depth: int, key: str = 'teacher.block') -> int:
    """``block`` as an index in [0, depth) (negative counts from the end); a ValueError naming ``key`` if
    it is not an int in [-depth, depth)."""
    if isinstance(block, bool) or not isinstance(block, int) or not -depth <= block < depth:
        raise ValueError(f'{key}={block!r} is not a block of a ViT of {depth} blocks: expected an int in '
                         f'[{-depth}, {depth - 1}] (-1 = the last block).')
    return block % depth


def vit_patch_tokens(vit: nn.Module, images: Tensor, block: int) -> Tensor:
    """Patch tokens (B, N, C) of an mmpretrain ``VisionTransformer`` after block ``block`` (in [0, depth)).

    The plain bidirectional forward; the ViT's final norm (``ln1``, if ``final_norm``) follows the last
    block only, as in ``VisionTransformer.forward``. That forward runs every block and formats its outputs
    by ``out_type``; this one stops after ``block`` and leaves the model's settings untouched.
    """
    x, grid = vit.patch_embed(images)
    if vit.cls_token is not None:
        x = torch.cat([vit.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
    x = x + resize_pos_embed(vit.pos_embed, vit.patch_resolution, grid, mode=vit.interpolate_mode,
                             num_extra_tokens=vit.num_extra_tokens)
    x = vit.pre_norm(vit.drop_after_pos(x))
    for layer in vit.layers[:block + 1]:
        x = layer(x)
    if block == len(vit.layers) - 1 and vit.final_norm:
        x = vit.ln1(x)
    return x[:, vit.num_extra_tokens:]


class BaseTeacher(BaseModule, metaclass=ABCMeta):
    """Base class of the teachers of ``FeatureTargetHead``.

    A subclass writes :attr:`out_channels` and :meth:`features`; it may write :meth:`attach` (bind to the
    student's encoder) and :meth:`update` (one step of a teacher that follows the student, e.g. an EMA).

    Args:
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self, init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        super().train(False)

    @property
    @abstractmethod
    def out_channels(self) -> int:
        """D, the width of one patch's feature."""

    @abstractmethod
    def features(self, images: Tensor) -> Tensor:
        """Patch features (B, N, D) of ``images`` (B, 3, H, W), raster order, no cls token."""

    def attach(self, encoder: nn.Module) -> None:
        """Bind to the student's encoder (``SAIMViT``); called once through ``FeatureTargetHead.attach``."""

    def update(self) -> None:
        """One update of the teacher from the student (once per training step); nothing by default."""

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        """Patch features (B, N, D) of ``images`` (B, 3, H, W), without gradients."""
        return self.features(images).detach()

    def train(self, mode: bool = True) -> 'BaseTeacher':
        """A teacher stays in eval mode (no dropout, no drop path) whatever ``mode`` is."""
        return super().train(False)
