from .cpu_distributed import setup_cpu_distributed
from .runner import build_runner

__all__ = ['build_runner', 'setup_cpu_distributed']
