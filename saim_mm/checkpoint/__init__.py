"""Checkpoints: safe loading and saving, the layouts of the same ViT, their recognition and their checks.

- saim_mm / mmpretrain (``VisionTransformer``, ``SAIMViT``): ``patch_embed.projection``, ``cls_token``,
  ``pos_embed``, ``layers.N.{ln1, attn.qkv, attn.proj, ln2, ffn.layers.0.0, ffn.layers.1}``, final norm
  ``ln1``; a SAIM checkpoint adds ``neck.layers.N.*`` (query stream), ``neck.ln`` and ``neck.predictor.*``
  (:mod:`.backbone` keeps only the encoder).
- the authors' SAIM release (repository qiy20/SAIM), read by :mod:`.official`.
- timm ``VisionTransformer``, both ways in :mod:`.timm`.

:mod:`.layouts` recognises each layout by its keys and converts it in memory wherever mmengine loads a
local checkpoint (:func:`load_any_layout`, and :class:`LayoutPretrainedInit` for ``init_cfg`` Pretrained).

Every file is read with ``weights_only=True`` (:mod:`.io`, with the allow-list of :mod:`.safe_globals`).
Every conversion is strict: a key it does not know is an error, never silently dropped, and the result is
checked against the shapes the architecture implies (:mod:`.schema`). What a conversion drops on purpose
is returned in a :class:`ConversionReport`. Every problem raises a :class:`CheckpointError` subclass.
"""
from .backbone import extract_backbone
from .errors import CheckpointError, CheckpointLoadError, CheckpointNotFoundError, ConversionError
from .io import (load_checkpoint_file, load_from_local_weights_only, load_safetensors_file, load_state_dict_file,
                 register_checkpoint_loader, save_state_dict_file)
from .layouts import LAYOUTS, Layout, detect_layout, load_any_layout, loading_into, to_saim_mm
from .official import gaussian_from_kernel, official_encoder_to_mm, official_saim_to_mm, saim_model_cfg
from .pretrained_init import LayoutPretrainedInit, register_pretrained_init
from .report import ConversionReport
from .safe_globals import checkpoint_safe_globals, register_checkpoint_safe_globals, statistics_method_getattr
from .schema import (StateDict, block_shapes, check_fits_model, check_state_dict, mm_vit_arch,
                     saim_decoder_shapes, strip_prefix, vit_shapes)
from .timm import mm_to_timm, timm_to_mm

__all__ = [
    'CheckpointError', 'CheckpointLoadError', 'CheckpointNotFoundError', 'ConversionError', 'ConversionReport',
    'LAYOUTS', 'Layout', 'LayoutPretrainedInit', 'StateDict', 'block_shapes', 'check_fits_model',
    'check_state_dict', 'checkpoint_safe_globals', 'detect_layout', 'extract_backbone', 'gaussian_from_kernel',
    'load_any_layout', 'load_checkpoint_file', 'load_from_local_weights_only', 'load_safetensors_file',
    'load_state_dict_file', 'loading_into', 'mm_to_timm', 'mm_vit_arch', 'official_encoder_to_mm',
    'official_saim_to_mm', 'register_checkpoint_loader', 'register_checkpoint_safe_globals',
    'register_pretrained_init', 'saim_decoder_shapes', 'saim_model_cfg', 'save_state_dict_file',
    'statistics_method_getattr', 'strip_prefix', 'timm_to_mm', 'to_saim_mm', 'vit_shapes'
]
