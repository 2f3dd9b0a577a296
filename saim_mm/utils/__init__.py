from .checkpoint_safety import checkpoint_safe_globals, register_checkpoint_safe_globals
from .cpu_distributed import setup_cpu_distributed

__all__ = ['checkpoint_safe_globals', 'register_checkpoint_safe_globals', 'setup_cpu_distributed']
