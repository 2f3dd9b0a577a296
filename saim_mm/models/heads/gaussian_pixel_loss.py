import math
from typing import Optional

import torch
import torch.nn.functional as F
from mmpretrain.registry import MODELS
from torch import Tensor

from .base_target_head import BaseTargetHead


def gaussian_kernel(kernel_size: int, sigma: float) -> Tensor:
    """2-D Gaussian ``G[i, j] ∝ exp(-((i-c)^2 + (j-c)^2) / (2 sigma^2))``, ``c = (k-1)/2``, sum 1.

    Returns:
        Tensor: (k, k) float64.
    """
    ax = torch.arange(kernel_size, dtype=torch.float64) - (kernel_size - 1) / 2
    g = torch.exp(-ax**2 / (2 * sigma**2))
    kernel = torch.outer(g, g)
    return kernel / kernel.sum()


@MODELS.register_module()
class GaussianPixelLoss(BaseTargetHead):
    """SAIM's target and loss: Gaussian-smoothed pixels of every patch.

    ``target = patchify(G_{k, sigma} * x)``: a depthwise Gaussian (zero padding ``k // 2``) on the
    normalised image, patches laid out as ``(p, p, 3)`` as in MAE; with ``norm_pix`` every target patch is
    standardised by its mean and unbiased variance (eps 1e-6), as mmpretrain's ``MAEPretrainHead`` does.
    The loss is the mean over all patches and values of the L2 or L1 penalty given by ``loss``
    (mmpretrain's ``PixelReconstructionLoss``).

    Args:
        loss (dict): Penalty config. Defaults to ``PixelReconstructionLoss`` with L2.
        norm_pix (bool): Standardise each target patch. Defaults to True.
        patch_size (int): Patch size p. Defaults to 16.
        in_channels (int): Image channels. Defaults to 3.
        kernel_size (int, optional): Gaussian kernel size k (odd, positive); None disables smoothing.
            Defaults to 9.
        sigma (float): Gaussian std (positive). Defaults to 1.0.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 loss: dict = dict(type='PixelReconstructionLoss', criterion='L2'),
                 norm_pix: bool = True,
                 patch_size: int = 16,
                 in_channels: int = 3,
                 kernel_size: Optional[int] = 9,
                 sigma: float = 1.0,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(patch_size=patch_size, init_cfg=init_cfg)
        self.norm_pix = norm_pix
        self.in_channels = in_channels
        self.loss_module = MODELS.build(loss)
        self.kernel_size = kernel_size
        self.sigma = sigma
        if kernel_size is not None:
            if not isinstance(kernel_size, int) or kernel_size <= 0 or kernel_size % 2 == 0:
                raise ValueError(f'GaussianPixelLoss kernel_size must be a positive odd int or None, '
                                 f'got {kernel_size!r}.')
            if not (isinstance(sigma, (int, float)) and math.isfinite(sigma) and sigma > 0):
                raise ValueError(f'GaussianPixelLoss sigma must be a positive number, got {sigma!r}.')
            kernel = gaussian_kernel(kernel_size, float(sigma))  # float64; cast to the image dtype on use
            self.register_buffer('kernel', kernel.expand(in_channels, 1, -1, -1).clone(), persistent=False)
        else:
            self.kernel = None

    @property
    def target_channels(self) -> int:
        """Width of one patch's target: p * p * C."""
        return self.patch_size**2 * self.in_channels

    def smooth(self, images: Tensor) -> Tensor:
        """Depthwise Gaussian smoothing of (B, C, H, W) images (identity when ``kernel_size`` is None)."""
        if self.kernel is None:
            return images
        kernel = self.kernel.to(images.dtype)
        return F.conv2d(images, kernel, padding=self.kernel_size // 2, groups=self.in_channels)

    def patchify(self, imgs: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, N, p*p*C), patches in raster order, values laid out (p, p, C)."""
        B, C, H, W = imgs.shape
        p = self.patch_size
        if H % p or W % p:
            raise ValueError(f'Image size {H}x{W} is not divisible by the patch size {p}.')
        x = imgs.reshape(B, C, H // p, p, W // p, p)
        return torch.einsum('nchpwq->nhwpqc', x).reshape(B, (H // p) * (W // p), p * p * C)

    def construct_target(self, images: Tensor) -> Tensor:
        """Targets (B, N, p*p*C) of ``images`` (B, C, H, W), patches in raster order."""
        target = self.patchify(self.smooth(images))
        if self.norm_pix:
            mean = target.mean(dim=-1, keepdim=True)
            var = target.var(dim=-1, keepdim=True)
            target = (target - mean) / (var + 1.e-6)**.5
        return target

    def criterion(self, pred: Tensor, target: Tensor) -> Tensor:
        """Mean penalty (``PixelReconstructionLoss``) between ``pred`` and ``target``, each (B, K, p*p*C)."""
        return self.loss_module(pred, target)
