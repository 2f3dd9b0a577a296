"""Seeding of data-loader workers that follows the main process's torch RNG."""
import random

import numpy as np
import torch
from mmengine.registry import FUNCTIONS


@FUNCTIONS.register_module()
def torch_seed_worker_init_fn(worker_id: int) -> None:
    """Seed a worker's numpy and python RNGs from the seed torch gave it.

    torch seeds worker ``i`` of each new loader iterator with ``base_seed + i``, where ``base_seed`` is
    drawn from the main process's torch RNG. mmengine's default ``worker_init_fn`` overwrites that with a
    fixed ``seed + worker_id + rank * num_workers``, so workers that are started again (every epoch with
    ``persistent_workers=False``, or after a resume) replay the same augmentations. Deriving the seeds
    from ``torch.initial_seed()`` instead ties them to the main RNG, which
    :class:`saim_mm.engine.ResumableRandomnessHook` re-seeds per (seed, rank, epoch).

    Use it with ``train_dataloader = dict(worker_init_fn=dict(type='torch_seed_worker_init_fn'), ...)``.

    Args:
        worker_id (int): Index of the worker (torch has already folded it into its seed).
    """
    seed = torch.initial_seed()
    np.random.seed(np.random.SeedSequence(seed).generate_state(4))
    random.seed(seed)
