from .cpu_distributed import setup_cpu_distributed
from .gather import all_gather_rows, ranks_flagging
from .runner import build_runner, close_process_group, parse_runner_args

__all__ = ['all_gather_rows', 'build_runner', 'close_process_group', 'parse_runner_args', 'ranks_flagging', 'setup_cpu_distributed']
