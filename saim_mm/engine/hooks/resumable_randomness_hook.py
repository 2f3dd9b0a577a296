import random
from typing import Optional

import numpy as np
import torch
from mmengine.dataset import DefaultSampler
from mmengine.hooks import Hook
from mmengine.runner import EpochBasedTrainLoop
from mmpretrain.registry import HOOKS


def reseed_all(*keys: int) -> None:
    """Seed python's, numpy's and torch's (every device's) global RNGs from the integers ``keys``.

    The keys are mixed by numpy's ``SeedSequence``, so nearby keys (epoch 3 and 4, rank 0 and 1) give
    unrelated streams.
    """
    seq = np.random.SeedSequence([int(k) % 2**64 for k in keys])
    torch_seed, python_seed = (int(s) for s in seq.generate_state(2, dtype=np.uint64))
    torch.manual_seed(torch_seed)  # also seeds the CUDA generators
    np.random.seed(seq.generate_state(4))
    random.seed(python_seed)


@HOOKS.register_module()
class ResumableRandomnessHook(Hook):
    """Make the random streams of an epoch depend only on (seed, rank, epoch), so that resume is exact.

    mmengine seeds the global RNGs once, when the runner starts, and does not store their states in
    checkpoints: a run resumed at epoch ``e`` draws its generation orders (``torch.rand`` in the model),
    its augmentations (numpy/python RNGs in the data pipeline) and its data-loader worker seeds from the
    *start-of-training* state, not from the state the uninterrupted run had at epoch ``e``.

    This hook re-seeds python, numpy and torch at the start of every epoch from ``(runner.seed, epoch,
    iteration)`` (``runner.seed`` already includes the rank when ``randomness.diff_rank_seed=True``).
    Nothing has to be stored: the resumed epoch ``e`` draws exactly what the uninterrupted one drew. The
    data-loader workers are seeded from torch's per-epoch loader seed (drawn after the re-seed) when the
    loader uses :func:`saim_mm.datasets.torch_seed_worker_init_fn` and is not persistent. Persistent workers
    (``persistent_workers=True``) carry their RNG states from one epoch to the next, and a resumed run cannot
    recreate those states: its augmentations then differ from the uninterrupted run's (the hook warns).

    It also stores the data sampler's seed in the checkpoint and restores it on resume: with
    ``randomness.seed=None`` mmengine draws the sampler seed at random *before* it reads the checkpoint, so
    the resumed run would visit the data in a different order.

    Scope: exact at epoch boundaries of an ``EpochBasedTrainLoop`` (the saim_mm configs save a checkpoint
    every epoch). A checkpoint saved mid-epoch (``CheckpointHook(by_epoch=False)``) is resumed by mmengine
    from the start of that epoch (its first batches are trained on again); the hook warns when that happens.
    """

    priority = 'LOWEST'  # re-seed after every other before_train_epoch hook, just before the loader starts

    def __init__(self) -> None:
        self._loaded_iter: Optional[int] = None
        self._loaded_sampler_seed: Optional[int] = None

    @staticmethod
    def _sampler(runner) -> Optional[DefaultSampler]:
        sampler = getattr(runner.train_dataloader, 'sampler', None)
        return sampler if isinstance(sampler, DefaultSampler) else None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        sampler = self._sampler(runner)
        if sampler is not None:
            checkpoint['meta']['sampler_seed'] = int(sampler.seed)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        meta = checkpoint.get('meta', {})
        self._loaded_iter = meta.get('iter')
        self._loaded_sampler_seed = meta.get('sampler_seed')

    def before_train(self, runner) -> None:
        resumed = self._loaded_iter is not None and runner.iter == self._loaded_iter and runner.iter > 0
        if not resumed:
            return
        sampler = self._sampler(runner)
        if sampler is not None and self._loaded_sampler_seed is not None:
            sampler.seed = int(self._loaded_sampler_seed)
        loader = runner.train_dataloader
        if getattr(loader, 'persistent_workers', False) and loader.num_workers > 0:
            runner.logger.warning(
                'Resumed with persistent data-loader workers: their random states are not in the checkpoint, so '
                'the augmentations differ from those of an uninterrupted run. For an exact continuation set '
                'train_dataloader.persistent_workers=False (tools/train.py --no-persistent-workers).')
        if isinstance(runner.train_loop, EpochBasedTrainLoop):
            iters_per_epoch = len(runner.train_dataloader)
            if runner.iter != runner.epoch * iters_per_epoch:
                runner.logger.warning(
                    f'Resumed from a checkpoint saved mid-epoch (iteration {runner.iter}, epoch {runner.epoch} '
                    f'+ {runner.iter - runner.epoch * iters_per_epoch}/{iters_per_epoch} batches): mmengine\'s '
                    f'EpochBasedTrainLoop restarts epoch {runner.epoch + 1} from its first batch, so those '
                    'batches are trained on twice and the run is not an exact continuation. Save checkpoints '
                    'by epoch for exact resume.')

    def before_train_epoch(self, runner) -> None:
        reseed_all(runner.seed, runner.epoch, runner.iter)
