"""Checkpoints: weights-only reading and writing (:mod:`.io`), the ViT layouts saim_mm reads and their
conversions (:mod:`.convert`), and :func:`checkpoint_filter_fn`, which brings any of them into a saim_mm
model where its weights are loaded (:mod:`.filter`). Importing this package changes nothing in mmengine or
torch; every problem raises a :class:`CheckpointError` subclass naming the file, keys or shapes.
"""
from .convert import (ConversionReport, check_fits_model, check_state_dict, extract_backbone, fuse_qkv,
                      gaussian_from_kernel, mm_to_timm, official_saim_to_mm, saim_model_cfg, timm_to_mm, vit_arch)
from .errors import CheckpointError, CheckpointLoadError, CheckpointNotFoundError, ConversionError
from .filter import LAYOUTS, add_checkpoint_filter, checkpoint_filter_fn, detect_layout, load_pretrained
from .io import (StateDict, checkpoint_safe_globals, load_checkpoint_file, load_state_dict_file, save_state_dict_file,
                 statistics_method_getattr, strip_prefix)

__all__ = [name for name in dir() if not name.startswith('_') and name not in ('convert', 'errors', 'filter', 'io')]
