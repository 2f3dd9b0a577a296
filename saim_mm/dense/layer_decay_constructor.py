from typing import Callable, List, Optional

from mmpretrain.engine.optimizers import LearningRateDecayOptimWrapperConstructor
from mmpretrain.registry import OPTIM_WRAPPER_CONSTRUCTORS
from torch import nn


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class BackboneLayerDecayOptimWrapperConstructor(LearningRateDecayOptimWrapperConstructor):
    """mmpretrain's layer-wise lr decay for models whose ViT sits in ``model.backbone`` (mmdet, mmseg).

    mmpretrain's :class:`LearningRateDecayOptimWrapperConstructor` does the work (lr ``base_lr *
    layer_decay_rate ** (num_layers + 1 - depth)``, weight-decay rules, ``custom_keys``), but it asks the
    *top-level* model for ``get_layer_depth``, which mmpretrain classifiers have and mmdet detectors / mmseg
    segmentors do not. mmseg's own ``LayerDecayOptimizerConstructor`` picks the rule by the backbone's class
    name ('BEiT' / 'MAE') and so refuses ``SAIMViT``. This subclass only supplies the depth from the
    backbone: ``model.backbone.get_layer_depth(name, prefix='backbone.')`` (mmpretrain's ViT rule: depth 0
    for ``backbone.cls_token``, ``backbone.pos_embed``, ``backbone.patch_embed.*``; ``i + 1`` for
    ``backbone.layers.i.*``; ``num_layers + 1`` (lr x 1) for everything else: final norm, neck, heads).
    """

    def add_params(self,
                   params: List[dict],
                   module: nn.Module,
                   prefix: str = '',
                   get_layer_depth: Optional[Callable] = None,
                   **kwargs) -> None:
        if get_layer_depth is None and not hasattr(module, 'get_layer_depth'):
            backbone = getattr(module, 'backbone', None)
            if backbone is None or not hasattr(backbone, 'get_layer_depth'):
                raise TypeError(f'{type(self).__name__} needs a model with a backbone that has '
                                f'get_layer_depth (e.g. SAIMViT); got {type(module).__name__} with backbone '
                                f'{type(backbone).__name__}.')

            def get_layer_depth(name: str):
                return backbone.get_layer_depth(name, prefix='backbone.')

        super().add_params(params, module, prefix=prefix, get_layer_depth=get_layer_depth, **kwargs)
