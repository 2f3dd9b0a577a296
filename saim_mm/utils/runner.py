import argparse
import os
from typing import Sequence

import torch.distributed as dist
from mmengine.config import Config, DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from .cpu_distributed import setup_cpu_distributed
from .data_roots import DataRootNotFoundError, check_data_roots


def build_runner(cfg: Config, loaders: Sequence[str]):
    """The runner of ``cfg`` as tools/train.py and tools/test.py build it.

    First the data sets of ``loaders`` are looked for (a missing one ends the program with one line naming
    the path and the ``--cfg-options`` key that moves it, before the model is built), then a CPU-only
    machine gets its distributed set-up, then mmengine's ``Runner`` (or the config's ``runner_type``,
    e.g. ``FlexibleRunner``) is built.
    """
    try:
        check_data_roots(cfg, loaders)
    except DataRootNotFoundError as err:
        raise SystemExit(f'error: {err}') from None  # one message, no traceback
    setup_cpu_distributed(cfg)
    return RUNNERS.build(cfg) if 'runner_type' in cfg else Runner.from_cfg(cfg)


def close_process_group() -> None:
    """After a run that ended normally: wait for every rank, then tear the process group down.

    mmengine leaves the default process group open at exit. With gloo, a rank that exits while another is
    still writing its checkpoint tears its connections down during interpreter shutdown, which can abort
    that process (``terminate called without an active exception``). A barrier and an explicit
    ``destroy_process_group`` end every rank the same way. Nothing happens outside a distributed run.
    """
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def parse_runner_args(parser: argparse.ArgumentParser, example: str) -> argparse.Namespace:
    """Add the options every runner tool shares (``--cfg-options``, ``--launcher``, ``--local-rank``), parse
    the command line and export ``LOCAL_RANK`` as mmengine's launchers expect it.

    Args:
        parser (ArgumentParser): The tool's parser with its own options.
        example (str): An example override for the ``--cfg-options`` help, e.g. ``'train_dataloader.batch_size=64'``.
    """
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help=f'override settings of the config, e.g. {example}')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
                        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args
