"""Make the dense-task modules of saim_mm visible to mmdet and mmseg configs.

The classes are registered once in mmpretrain's registries by their decorators; here the *same class
objects* are added to mmdet's and mmseg's registries, so ``default_scope='mmdet'`` / ``'mmseg'`` configs can
name them (``type='SAIMViT'``) and one checkpoint loads into all three.
"""
import importlib
from typing import Dict, List

DOWNSTREAM_SCOPES = ('mmdet', 'mmseg')


def _entries() -> Dict[str, List[type]]:
    from ..engine.hooks import AtomicCheckpointHook, NonFiniteLossHook
    from ..engine.optimizers import BackboneLayerDecayOptimWrapperConstructor
    from ..models.backbones import SAIMViT
    from ..models.necks import ViTPyramidNeck
    return {'MODELS': [SAIMViT, ViTPyramidNeck],
            'OPTIM_WRAPPER_CONSTRUCTORS': [BackboneLayerDecayOptimWrapperConstructor],
            'HOOKS': [AtomicCheckpointHook, NonFiniteLossHook]}


def register_downstream_modules() -> List[str]:
    """Register SAIMViT, ViTPyramidNeck, the layer-decay constructor and the checkpoint/loss-guard hooks in
    mmdet's and mmseg's registries.

    A scope whose package is not installed is skipped (pre-training needs neither).

    Returns:
        list[str]: The scopes registered into.
    """
    done = []
    for scope in DOWNSTREAM_SCOPES:
        try:
            registry = importlib.import_module(f'{scope}.registry')
        except ModuleNotFoundError as e:
            if e.name is not None and e.name.split('.')[0] == scope:
                continue
            raise
        for name, classes in _entries().items():
            reg = getattr(registry, name)
            for cls in classes:
                if reg.module_dict.get(cls.__name__) is not cls:
                    reg.register_module(module=cls)
        done.append(scope)
    return done
