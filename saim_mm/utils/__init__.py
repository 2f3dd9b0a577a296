from .checkpoint_safety import (CheckpointLoadError, checkpoint_safe_globals, load_checkpoint_file,
                                register_checkpoint_loader, register_checkpoint_safe_globals)
from .cpu_distributed import setup_cpu_distributed
from .downstream_registries import register_downstream_modules

__all__ = [
    'CheckpointLoadError', 'checkpoint_safe_globals', 'load_checkpoint_file', 'register_checkpoint_loader',
    'register_checkpoint_safe_globals', 'setup_cpu_distributed', 'register_downstream_modules'
]
