from typing import Sequence

from mmengine.config import Config
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
