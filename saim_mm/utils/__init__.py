from .cpu_distributed import setup_cpu_distributed
from .gather import all_gather_rows
from .runner import build_runner

__all__ = ['all_gather_rows', 'build_runner', 'setup_cpu_distributed']
