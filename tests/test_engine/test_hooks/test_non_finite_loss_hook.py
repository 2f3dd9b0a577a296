"""NonFiniteLossHook: a NaN/inf loss stops training, naming the iteration, before it reaches a checkpoint."""
import os
import os.path as osp
from types import SimpleNamespace

import pytest
import torch
from mmengine.runner import Runner

import saim_mm  # noqa: F401
from saim_mm.checkpoint import load_checkpoint_file
from saim_mm.engine.hooks import NonFiniteLossHook
from tests.conftest import demo_train_cfg, spawn_gloo

ITERS_PER_EPOCH = 4  # 32 demo images, batch 8


def runner_with_bad_loss(demo_data, work, bad_iter: int, value: float = float('nan'), **options) -> Runner:
    """The demo runner whose loss at iteration ``bad_iter`` (1-based) is multiplied by ``value``."""
    runner = Runner.from_cfg(demo_train_cfg(demo_data, work, epochs=3, **options))
    loss = runner.model.loss

    def loss_with_fault(*args, **kwargs):
        out = loss(*args, **kwargs)
        if runner.iter + 1 == bad_iter:
            out['loss'] = out['loss'] * value  # NaN/inf reach the gradients and the weights, as in divergence
        return out

    runner.model.loss = loss_with_fault
    return runner


def checkpoints(work: str) -> list:
    return sorted(f for f in os.listdir(work) if f.endswith('.pth'))


def last_checkpoint(work: str) -> str:
    return open(osp.join(work, 'last_checkpoint')).read()


@pytest.mark.parametrize('value', [float('nan'), float('inf')])
def test_non_finite_loss_on_the_last_batch_of_an_epoch_stops_before_its_checkpoint(demo_data, tmp_path, value):
    work = str(tmp_path / 'work')
    runner = runner_with_bad_loss(demo_data, work, bad_iter=2 * ITERS_PER_EPOCH, value=value)
    with pytest.raises(FloatingPointError, match=rf"Non-finite loss at iteration 8 \(epoch 2, batch 4/4\) on "
                                                 rf"rank\(s\) \[0\]: {{'loss': {value}}}.*the last checkpoint is "
                                                 rf'{work}/epoch_1.pth'):
        runner.train()
    assert checkpoints(work) == ['epoch_1.pth']  # epoch_2.pth (due after this iteration) was never written
    assert last_checkpoint(work) == osp.join(work, 'epoch_1.pth')
    good = load_checkpoint_file(osp.join(work, 'epoch_1.pth'))
    assert all(torch.isfinite(v).all() for v in good['state_dict'].values())


def test_iteration_checkpoints_stop_at_the_last_good_iteration(demo_data, tmp_path):
    work = str(tmp_path / 'work')
    runner = runner_with_bad_loss(demo_data, work, bad_iter=6, **{'default_hooks.checkpoint.by_epoch': False})
    with pytest.raises(FloatingPointError, match=r'Non-finite loss at iteration 6 \(epoch 2, batch 2/4\)'):
        runner.train()
    assert checkpoints(work) == [f'iter_{i}.pth' for i in range(1, 6)]
    assert last_checkpoint(work) == osp.join(work, 'iter_5.pth')


def test_without_the_hook_the_checkpoint_hook_still_refuses_non_finite_weights(demo_data, tmp_path):
    """Second line of defence (and why the loss hook is needed): AtomicCheckpointHook checks the weights."""
    work = str(tmp_path / 'work')
    runner = runner_with_bad_loss(demo_data, work, bad_iter=6, custom_hooks=[dict(type='ResumableRandomnessHook')])
    with pytest.raises(FloatingPointError, match=r'Refusing to save epoch_2.pth after iteration 8: parameters '
                                                 r'\[.*\] ... \(\d+ in all\) are not finite'):
        runner.train()
    assert checkpoints(work) == ['epoch_1.pth']


def test_mmengine_alone_trains_on_and_checkpoints_nan_weights(demo_data, tmp_path):
    """What the two hooks prevent: mmengine's CheckpointHook makes the NaN weights the latest checkpoint."""
    work = str(tmp_path / 'work')
    runner = runner_with_bad_loss(demo_data, work, bad_iter=6, custom_hooks=[],
                                  **{'default_hooks.checkpoint.type': 'CheckpointHook'})
    runner.train()
    assert last_checkpoint(work) == osp.join(work, 'epoch_3.pth')
    weights = load_checkpoint_file(osp.join(work, 'epoch_3.pth'))['state_dict']
    assert not all(torch.isfinite(v).all() for v in weights.values())


def nan_on_rank1_only(rank: int, out_dir: str) -> None:
    """After-iteration check on 2 gloo ranks where only rank 1's loss is NaN."""
    loss = torch.tensor(float('nan') if rank == 1 else 0.5)
    runner = SimpleNamespace(iter=41, epoch=2, train_loop=SimpleNamespace(max_epochs=10),
                             train_dataloader=range(20), message_hub=SimpleNamespace(get_info=lambda k: 'epoch_2.pth'))
    try:
        NonFiniteLossHook().after_train_iter(runner, batch_idx=1, outputs=dict(loss=loss))
        message = 'no error'
    except FloatingPointError as err:
        message = str(err)
    with open(osp.join(out_dir, f'rank{rank}.txt'), 'w') as f:
        f.write(message)


def test_every_rank_stops_at_the_same_iteration(tmp_path):
    """A NaN on one rank stops all ranks (a rank that went on would hang in the next all-reduce)."""
    spawn_gloo(nan_on_rank1_only, str(tmp_path))
    rank0, rank1 = (open(tmp_path / f'rank{r}.txt').read() for r in (0, 1))
    assert rank0.startswith('Non-finite loss at iteration 42 (epoch 3, batch 2/20) on rank(s) [1]: finite here')
    assert rank1.startswith("Non-finite loss at iteration 42 (epoch 3, batch 2/20) on rank(s) [1]: {'loss': nan}")
