"""saim_mm: SAIM (Stochastic Autoregressive Image Modeling) for mmpretrain, mmdet and mmsegmentation.

Importing it registers saim_mm's modules and model index in the OpenMMLab registries and changes nothing
else: mmengine's checkpoint loaders and initialisers and torch's weights-only allow-list stay as they were.
"""
from .version import __version__  # noqa: F401
from .version_check import check_versions

check_versions()

from . import datasets, dense, engine, evaluation, models  # noqa: E402,F401  (registers transforms, hooks, loops, models)
from . import apis  # noqa: E402,F401  (registers saim_mm's model index with mmpretrain's ModelHub)

__all__ = ['__version__', 'check_versions']
