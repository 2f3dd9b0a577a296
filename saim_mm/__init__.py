"""saim_mm: SAIM (Stochastic Autoregressive Image Modeling) for mmpretrain, mmdet and mmsegmentation."""
from .version import __version__  # noqa: F401
from .version_check import check_versions

check_versions()

from . import datasets, dense, engine, evaluation, models  # noqa: E402,F401  (registers transforms, hooks, loops, models)
from .checkpoint import register_checkpoint_loader, register_checkpoint_safe_globals  # noqa: E402

register_checkpoint_safe_globals()
register_checkpoint_loader()
from . import apis  # noqa: E402,F401  (registers saim_mm's model index with mmpretrain's ModelHub)

__all__ = ['__version__', 'check_versions']
