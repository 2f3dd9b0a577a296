"""mmengine's ``Pretrained`` initialiser, told what it loads into."""
from typing import Optional

from mmengine.model.weight_init import PretrainedInit
from mmengine.registry import WEIGHT_INITIALIZERS
from torch import nn

from .layouts import loading_into


def init_target(module: nn.Module) -> Optional[str]:
    """``'backbone'`` for a ViT encoder (mmpretrain's ``VisionTransformer`` and its subclasses ``SAIMViT``,
    ``SAIMDenseViT``), ``'model'`` for a saim_mm ``SAIM``, None for anything else."""
    from mmpretrain.models import VisionTransformer

    from ..models import SAIM
    if isinstance(module, VisionTransformer):
        return 'backbone'
    return 'model' if isinstance(module, SAIM) else None


class LayoutPretrainedInit(PretrainedInit):
    """``init_cfg=dict(type='Pretrained', checkpoint=..., prefix=...)`` that knows the module it fills.

    mmengine's ``PretrainedInit`` loads the file through the checkpoint loader, which cannot know what the
    weights are for; loading a file of another model into a ViT then only logs the missing keys and leaves
    the random initialisation. For a ViT encoder or a SAIM model this class tells the loader
    (:func:`.loading_into`), so a local file that fits none of the layouts of :mod:`.layouts` is refused with
    the layouts it was compared against, and a ViT given no ``prefix`` takes ``backbone.``, where every
    layout's encoder is after conversion. Every other module, and every URL, is loaded exactly as by
    mmengine's class.
    """

    def __call__(self, module: nn.Module) -> None:
        target = init_target(module)
        if target is None:
            super().__call__(module)
            return
        prefix = self.prefix
        if target == 'backbone' and prefix is None and '://' not in str(self.checkpoint):  # local files only
            self.prefix = 'backbone.'
        try:
            with loading_into(target):
                super().__call__(module)
        finally:
            self.prefix = prefix

    def _get_init_info(self) -> str:
        return f'PretrainedInit: load from {self.checkpoint}'


def register_pretrained_init() -> None:
    """Make ``type='Pretrained'`` build :class:`LayoutPretrainedInit` in every scope (idempotent)."""
    WEIGHT_INITIALIZERS.register_module(name='Pretrained', module=LayoutPretrainedInit, force=True)
