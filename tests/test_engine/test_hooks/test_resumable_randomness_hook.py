"""ResumableRandomnessHook: per-(seed, rank, epoch) random streams; what it stores and warns about.

The end-to-end proof (a killed and resumed run gives the uninterrupted run's losses and weights) is
tests/test_tools/test_resume_exact.py; these are its parts.
"""
import random
from types import SimpleNamespace

import numpy as np
import torch
from mmengine.dataset import DefaultSampler

from saim_mm.engine.hooks.resumable_randomness_hook import ResumableRandomnessHook, reseed_all


def draws():
    return torch.rand(3).tolist(), np.random.rand(3).tolist(), [random.random() for _ in range(3)]


def test_reseed_all_gives_one_stream_per_key():
    reseed_all(0, 3, 12)
    first = draws()
    reseed_all(0, 3, 12)
    assert draws() == first  # python, numpy and torch replay
    for keys in [(1, 3, 12), (0, 4, 16)]:  # another rank's seed, the next epoch
        reseed_all(*keys)
        other = draws()
        assert all(a != b for a, b in zip(other, first))


class Logger:
    def __init__(self):
        self.warnings = []

    def warning(self, msg):
        self.warnings.append(msg)


class Loader:
    """The parts of a DataLoader the hook reads: 4 batches of 8 from 32 samples."""

    def __init__(self, persistent_workers: bool, num_workers: int) -> None:
        self.sampler = DefaultSampler(list(range(32)), seed=999)
        self.persistent_workers, self.num_workers = persistent_workers, num_workers

    def __len__(self) -> int:
        return 4


def resumed_runner(persistent: bool, workers: int, iteration: int = 8):
    return SimpleNamespace(train_dataloader=Loader(persistent, workers), iter=iteration, epoch=2, train_loop=None,
                           logger=Logger())


def test_sampler_seed_is_stored_and_restored():
    hook, saved = ResumableRandomnessHook(), {'meta': {'iter': 8}}
    hook.before_save_checkpoint(SimpleNamespace(train_dataloader=SimpleNamespace(
        sampler=DefaultSampler(list(range(32)), seed=1234))), saved)
    assert saved['meta']['sampler_seed'] == 1234
    hook.after_load_checkpoint(None, saved)
    runner = resumed_runner(persistent=False, workers=2)
    hook.before_train(runner)
    assert runner.train_dataloader.sampler.seed == 1234
    assert runner.logger.warnings == []


def test_warns_when_a_resumed_run_has_persistent_workers():
    hook = ResumableRandomnessHook()
    hook.after_load_checkpoint(None, {'meta': {'iter': 8}})
    runner = resumed_runner(persistent=True, workers=2)
    hook.before_train(runner)
    assert len(runner.logger.warnings) == 1
    assert 'persistent_workers=False (tools/train.py --no-persistent-workers)' in runner.logger.warnings[0]
    fresh = ResumableRandomnessHook()  # a run that starts from scratch: nothing to warn about
    runner = resumed_runner(persistent=True, workers=2, iteration=0)
    fresh.before_train(runner)
    assert runner.logger.warnings == []
