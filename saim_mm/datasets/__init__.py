from .transforms import *  # noqa: F401,F403
from .worker_init import torch_seed_worker_init_fn

__all__ = ['torch_seed_worker_init_fn']
