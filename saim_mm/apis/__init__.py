"""Using a SAIM model: saim_mm's models in mmpretrain's model index, and what a model computes.

``import saim_mm`` registers the index, so ``mmpretrain.get_model('<name>', pretrained=PATH)``,
``list_models('*saim*')`` and mmpretrain's inferencers know saim_mm's models (:mod:`.model_index`).
:mod:`.inference` gives features, reconstructions, completions and attention maps of a model.
"""
from .inference import (POOLS, as_batch, attention_maps, complete, extract_features, init_saim_model, load_image,
                        patch_stats, reconstruct, smoothed_target_patches, unpatchify)
from .model_index import MODEL_INDEX, register_model_index

register_model_index()

__all__ = [
    'MODEL_INDEX', 'POOLS', 'as_batch', 'attention_maps', 'complete', 'extract_features', 'init_saim_model',
    'load_image', 'patch_stats', 'reconstruct', 'register_model_index', 'smoothed_target_patches', 'unpatchify'
]
