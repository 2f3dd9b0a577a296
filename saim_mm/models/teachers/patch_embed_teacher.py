from typing import Optional

from mmpretrain.registry import MODELS
from torch import Tensor, nn

from .base_teacher import BaseTeacher


@MODELS.register_module()
class PatchEmbedTeacher(BaseTeacher):
    """The student encoder's own patch embeddings, without gradients (NEPA's next-embedding targets).

    The feature of a patch is ``encoder.patch_embed`` of it (the linear patch projection, before the
    position embedding), computed with the encoder's current weights and detached: the target moves with
    the student but passes it no gradient. The teacher holds no weights of its own (the encoder is kept by
    reference, not as a sub-module, so nothing of it enters the head's parameters or state dict).

    Args:
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self, init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.__dict__['encoder'] = None

    def attach(self, encoder: nn.Module) -> None:
        """Keep a reference to ``encoder`` (``SAIMViT``)."""
        self.__dict__['encoder'] = encoder

    def attached_encoder(self) -> nn.Module:
        """The encoder; a RuntimeError before :meth:`attach`."""
        if self.encoder is None:
            raise RuntimeError('PatchEmbedTeacher is not attached to an encoder: SAIM attaches its head '
                               '(FeatureTargetHead.attach(encoder)) when it is built.')
        return self.encoder

    @property
    def out_channels(self) -> int:
        """The encoder width."""
        return self.attached_encoder().embed_dims

    def features(self, images: Tensor) -> Tensor:
        """``encoder.patch_embed(images)``: (B, N, C), raster order."""
        return self.attached_encoder().patch_embed(images)[0]
