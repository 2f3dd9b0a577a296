"""Checkpoints: weights-only files (:mod:`.io`), layout conversions (:mod:`.convert`), and the
``checkpoint_filter_fn`` saim_mm's models load through (:mod:`.filter`). Importing it changes nothing elsewhere."""
from .convert import (ConversionReport, check_state_dict, extract_backbone, fuse_qkv,
                      gaussian_from_kernel, mm_to_timm, official_saim_to_mm, timm_to_mm, vit_arch)
from .errors import CheckpointError, CheckpointLoadError, CheckpointNotFoundError, ConversionError
from .filter import LAYOUTS, add_checkpoint_filter, checkpoint_filter_fn, detect_layout, load_pretrained
from .io import (StateDict, checkpoint_safe_globals, load_checkpoint_file, load_state_dict_file, save_state_dict_file,
                 statistics_method_getattr, strip_prefix)

__all__ = [name for name in dir() if not name.startswith('_') and name not in ('convert', 'errors', 'filter', 'io')]
