from typing import Optional

import torch
import torch.nn.functional as F
from mmpretrain.models.selfsup.maskfeat import HOGGenerator
from mmpretrain.registry import MODELS
from torch import Tensor

from .base_target_head import BaseTargetHead


class PatchHOGGenerator(HOGGenerator):
    """mmpretrain's ``HOGGenerator`` with the histograms grouped per patch of any grid.

    ``HOGGenerator`` computes the cell histograms (gradients, orientation bins, Gaussian window, L2 norm)
    but its ``_reshape`` assumes a 14 x 14 patch grid; this subclass only replaces that grouping.
    """

    def __init__(self, patch_size: int, **kwargs) -> None:
        super().__init__(**kwargs)
        if patch_size % self.pool:
            raise ValueError(f'HOG pool={self.pool} must divide the patch size {patch_size}.')
        self.cells = patch_size // self.pool  # cells per patch side

    def _reshape(self, hog: Tensor) -> Tensor:
        """(B, 3, nbins, H/pool, W/pool) -> (B, N, 3 * nbins * cells * cells), patches in raster order (the
        per-patch layout of ``HOGGenerator``)."""
        B, C, nb, h, w = hog.shape
        c = self.cells
        hog = hog.reshape(B, C * nb, h // c, c, w // c, c).permute(0, 2, 4, 1, 3, 5)
        return hog.reshape(B, (h // c) * (w // c), C * nb * c * c)


@MODELS.register_module()
class HOGLoss(BaseTargetHead):
    """HOG features of every patch as the target (MaskFeat's target, computed by mmpretrain's HOG code).

    ``target = HOG(x)`` per patch: ``(p / pool)^2`` cells x 3 channels x ``nbins`` orientation bins, each
    cell's histogram L2-normalised, on the normalised image; loss = mean squared error over all patches
    and values.

    Args:
        patch_size (int): Patch size p. Defaults to 16.
        nbins (int): Orientation bins. Defaults to 9.
        pool (int): Cell size in pixels; must divide p. Defaults to 8.
        gaussian_window (int): Side of the Gaussian weighting window (must divide the image size; 0 = none).
            Defaults to 16.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self, patch_size: int = 16, nbins: int = 9, pool: int = 8, gaussian_window: int = 16,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(patch_size=patch_size, init_cfg=init_cfg)
        self.hog = PatchHOGGenerator(patch_size, nbins=nbins, pool=pool, gaussian_window=gaussian_window)

    @property
    def target_channels(self) -> int:
        """Width of one patch's target: (p / pool)^2 * 3 * nbins."""
        return self.hog.cells**2 * 3 * self.hog.nbins

    def construct_target(self, images: Tensor) -> Tensor:
        """HOG targets (B, N, D) of ``images`` (B, 3, H, W), patches in raster order (no gradient)."""
        with torch.no_grad():
            return self.hog(images.float()).to(images.dtype)

    def criterion(self, pred: Tensor, target: Tensor) -> Tensor:
        """Mean squared error between ``pred`` and ``target``, each (B, K, D)."""
        return F.mse_loss(pred, target)
