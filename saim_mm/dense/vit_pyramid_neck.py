from typing import Optional, Sequence, Tuple, Union

import torch.nn as nn
from mmcv.cnn import build_norm_layer
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS
from torch import Tensor

SUPPORTED_SCALES = (4, 2, 1, 0.5)


@MODELS.register_module()
class ViTPyramidNeck(BaseModule):
    """Resample single-scale ViT feature maps into a feature pyramid (FPN / UperNet input).

    A plain ViT gives maps at stride p (16) only. Feature ``i`` is resampled by ``scales[i]``:

    - ``4``: ConvTranspose2d(2, stride 2) -> norm -> GELU -> ConvTranspose2d(2, stride 2):
      (B, C, H, W) -> (B, C, 4H, 4W) (stride p/4 = 4);
    - ``2``: ConvTranspose2d(2, stride 2): (B, C, H, W) -> (B, C, 2H, 2W) (stride 8);
    - ``1``: identity: (B, C, H, W) (stride 16);
    - ``0.5``: MaxPool2d(2, stride 2): (B, C, H, W) -> (B, C, floor(H/2), floor(W/2)) (stride 32).

    The channel count C is kept; the FPN / UperNet that follows takes ``in_channels=[C] * len(scales)``.
    mmseg's ``Feature2Pyramid`` resamples the same way but only at the fixed scales (4, 2, 1, 0.5), without
    checking its inputs, and under other parameter names; this neck takes any list of those scales, says
    what is wrong with a mismatched backbone, and keeps the names that saim_mm's dense checkpoints use.

    Args:
        in_channels (int): C, the ViT width.
        scales (Sequence[float]): One scale per input feature, each of 4, 2, 1, 0.5. Defaults to
            ``(4, 2, 1, 0.5)``.
        norm_cfg (dict): Norm between the two deconvolutions of the x4 branch. Defaults to BN.
        init_cfg (dict | list, optional): Initialisation config.
    """

    def __init__(self,
                 in_channels: int,
                 scales: Sequence[float] = SUPPORTED_SCALES,
                 norm_cfg: dict = dict(type='BN', requires_grad=True),
                 init_cfg: Optional[Union[dict, list]] = None) -> None:
        super().__init__(init_cfg)
        bad = [s for s in scales if s not in SUPPORTED_SCALES]
        if bad or not scales:
            raise ValueError(f'ViTPyramidNeck scales must be a non-empty list of {SUPPORTED_SCALES}, '
                             f'got {list(scales)}.')
        self.in_channels = in_channels
        self.scales = tuple(scales)
        C = in_channels
        branches = []
        for s in self.scales:
            if s == 4:
                branches.append(nn.Sequential(
                    nn.ConvTranspose2d(C, C, kernel_size=2, stride=2),
                    build_norm_layer(norm_cfg, C)[1],
                    nn.GELU(),
                    nn.ConvTranspose2d(C, C, kernel_size=2, stride=2)))
            elif s == 2:
                branches.append(nn.ConvTranspose2d(C, C, kernel_size=2, stride=2))
            elif s == 1:
                branches.append(nn.Identity())
            else:
                branches.append(nn.MaxPool2d(kernel_size=2, stride=2))
        self.branches = nn.ModuleList(branches)

    def forward(self, inputs: Sequence[Tensor]) -> Tuple[Tensor, ...]:
        """Resample each map by its scale.

        Args:
            inputs (Sequence[Tensor]): ``len(scales)`` maps, each (B, C, H, W).

        Returns:
            tuple[Tensor]: ``len(scales)`` maps; map i is (B, C, H*scales[i], W*scales[i]) (floor for 0.5).
        """
        if len(inputs) != len(self.scales):
            raise ValueError(f'ViTPyramidNeck got {len(inputs)} feature maps for {len(self.scales)} scales '
                             f'{self.scales}: the backbone out_indices and the neck scales must match.')
        for i, x in enumerate(inputs):
            if x.dim() != 4 or x.shape[1] != self.in_channels:
                raise ValueError(f'ViTPyramidNeck input {i} must be (B, {self.in_channels}, H, W), got '
                                 f'{tuple(x.shape)} (use out_type="featmap" in the backbone).')
        return tuple(branch(x) for branch, x in zip(self.branches, inputs))
