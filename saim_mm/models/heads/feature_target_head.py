from typing import Optional, Union

import torch.nn.functional as F
from mmpretrain.registry import MODELS
from torch import Tensor, nn

from ..teachers import BaseTeacher
from .base_target_head import BaseTargetHead

LOSSES = ('normalized_l2', 'cosine')


@MODELS.register_module()
class FeatureTargetHead(BaseTargetHead):
    """Patch features of a frozen teacher as the target (SemAIM, D-iGPT, NEPA).

    The target of a patch is its feature from ``teacher`` (a ``BaseTeacher``: ``EMATeacher``,
    ``PretrainedTeacher``, ``PatchEmbedTeacher``), computed without gradients; ``SAIM`` updates the
    teacher once per training step, before the order is drawn (one EMA step; nothing for the others). With p = pred / ||p|| and t = target / ||t|| per
    patch (L2 norms over the D channels), the losses are:

    - ``'normalized_l2'`` (SemAIM): ||p - t||^2, summed over the D channels, averaged over the patches;
    - ``'cosine'`` (D-iGPT; NEPA's negative cosine similarity up to an affine map): 2 - 2 <p, t>, averaged
      over the patches.

    For non-zero vectors both equal 2 - 2 cos(pred, target); they differ in how they are computed. Both
    divide the target by its norm, so the target's scale does not matter, and the references normalise no
    further (the teacher's own final norm, if any, is part of its features): no target normalisation here.

    Args:
        teacher (dict | BaseTeacher): Config of the teacher.
        patch_size (int): Patch size p (the encoder's).
        loss (str): ``'normalized_l2'`` or ``'cosine'``. Defaults to ``'normalized_l2'``.
        feature_dims (int, optional): The width the head predicts; when given, it must equal the teacher's
            width (checked when the teacher is attached: inside ``SAIM``, before the decoder is sized).
            Needed only outside ``SAIM`` before ``attach``. Defaults to None (the teacher's width).
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 teacher: Union[dict, BaseTeacher],
                 patch_size: int,
                 loss: str = 'normalized_l2',
                 feature_dims: Optional[int] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(patch_size=patch_size, init_cfg=init_cfg)
        if loss not in LOSSES:
            raise ValueError(f'head.loss={loss!r} is not a loss of FeatureTargetHead: expected one of {LOSSES}.')
        if feature_dims is not None and (isinstance(feature_dims, bool) or not isinstance(feature_dims, int)
                                         or feature_dims < 1):
            raise ValueError(f'head.feature_dims={feature_dims!r} must be a positive int (the teacher width).')
        self.teacher = MODELS.build(teacher) if isinstance(teacher, dict) else teacher
        if not isinstance(self.teacher, BaseTeacher):
            raise TypeError(f'head.teacher must be a BaseTeacher ({BaseTeacher.__module__}), got '
                            f'{type(self.teacher).__name__}.')
        self.loss_name = loss
        self.feature_dims = feature_dims
        self.attached = False
        if self.teacher_width() is not None:
            self.check_width()

    def teacher_width(self) -> Optional[int]:
        """The teacher's width, or None while it depends on an encoder not yet attached."""
        try:
            return self.teacher.out_channels
        except RuntimeError:
            if self.attached:
                raise
            return None

    def check_width(self) -> None:
        width = self.teacher.out_channels
        if self.feature_dims is not None and self.feature_dims != width:
            raise ValueError(f'head.feature_dims={self.feature_dims} differs from the width of the teacher '
                             f'{type(self.teacher).__name__}, {width}: a teacher width the head cannot take '
                             f'(set head.feature_dims={width} or leave it unset).')

    @property
    def target_channels(self) -> int:
        """D: the teacher's width (``feature_dims`` until an encoder-bound teacher is attached)."""
        width = self.teacher_width()
        if width is not None:
            return width
        if self.feature_dims is None:
            raise ValueError(f'head.feature_dims is needed with head.teacher={type(self.teacher).__name__}: its '
                             'width is the encoder width (backbone embed_dims), known once the head is attached to '
                             'an encoder (SAIM attaches it when built); on its own, set head.feature_dims to it.')
        return self.feature_dims

    def attach(self, encoder: nn.Module) -> None:
        """Bind the teacher to the student's encoder and check its width against ``feature_dims``."""
        self.teacher.attach(encoder)
        self.attached = True
        self.check_width()

    def update(self) -> None:
        """One step of the teacher (an EMA update; nothing for a fixed teacher), once per training step."""
        self.teacher.update()

    def construct_target(self, images: Tensor) -> Tensor:
        """Teacher features (B, N, D) of ``images`` (B, 3, H, W), raster order."""
        return self.teacher(images)

    def criterion(self, pred: Tensor, target: Tensor) -> Tensor:
        """The ``loss`` between predictions (B, K, D) and targets (B, K, D), averaged over the B * K patches."""
        pred, target = F.normalize(pred, dim=-1), F.normalize(target, dim=-1)
        if self.loss_name == 'normalized_l2':
            return (pred - target).pow(2).sum(-1).mean()
        return (2 - 2 * (pred * target).sum(-1)).mean()
