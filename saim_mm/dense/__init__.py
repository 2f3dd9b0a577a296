"""Detection and segmentation parts: what the SAIM encoder needs inside mmdet and mmseg models.

Registered in mmpretrain's registries like the rest of saim_mm; mmdet / mmseg configs name them with
mmengine's scoped type names, e.g. ``type='mmpretrain.SAIMDenseViT'``.
"""
from .layer_decay_constructor import BackboneLayerDecayOptimWrapperConstructor
from .saim_dense_vit import SAIMDenseViT
from .vit_pyramid_neck import ViTPyramidNeck

__all__ = ['BackboneLayerDecayOptimWrapperConstructor', 'SAIMDenseViT', 'ViTPyramidNeck']
