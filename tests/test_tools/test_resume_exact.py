"""tools/train.py killed with SIGKILL mid-epoch and resumed continues exactly like an uninterrupted run."""
import glob
import json
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import pytest
import torch

import saim_mm  # noqa: F401
from saim_mm.checkpoint import load_checkpoint_file
from tests.conftest import REPO
from tests.test_tools.test_train import DEMO, env_with_venv, tiny_run_options

EPOCHS, ITERS_PER_EPOCH = 4, 4  # 32 demo images, batch 8
KILL_AFTER = 10  # iteration (1-based) after which the run is killed: mid-epoch 3, last checkpoint epoch_2


def run_losses(path: str) -> dict:
    """{iteration: loss} from one run's scalars.json (complete lines only: the run may be writing)."""
    losses = {}
    with open(path) as f:
        for line in f:
            if line.endswith('\n'):
                rec = json.loads(line)
                losses[rec['iter']] = rec['loss']
    return losses


def read_losses(work: str) -> dict:
    """{iteration: loss} over the runs (timestamped folders) in ``work``."""
    losses = {}
    for path in glob.glob(osp.join(work, '*', 'vis_data', 'scalars.json')):
        losses.update(run_losses(path))
    return losses


def train_cmd(data_root: str, work: str, workers: int) -> list:
    # the deterministic settings of README, Reliability: --no-persistent-workers, randomness.deterministic
    return [sys.executable, osp.join(REPO, 'tools/train.py'), DEMO, '--work-dir', work, '--no-persistent-workers',
            *tiny_run_options(data_root, EPOCHS), f'train_dataloader.num_workers={workers}',
            'log_processor.window_size=1', 'randomness.deterministic=True']


@pytest.mark.parametrize('workers', [0, 1], ids=['main-process-data', 'one-worker'])
def test_sigkill_mid_epoch_then_resume_gives_identical_losses_and_weights(demo_data, tmp_path, workers):
    full, broken = str(tmp_path / 'full'), str(tmp_path / 'broken')
    ref = subprocess.run(train_cmd(demo_data, full, workers), env=env_with_venv(), cwd=REPO,
                         capture_output=True, text=True, timeout=600)
    assert ref.returncode == 0, (ref.stdout + ref.stderr)[-3000:]
    ref_losses = read_losses(full)
    assert sorted(ref_losses) == list(range(1, EPOCHS * ITERS_PER_EPOCH + 1))

    cmd = train_cmd(demo_data, broken, workers)
    proc = subprocess.Popen(cmd, env=env_with_venv(), cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    while KILL_AFTER not in read_losses(broken):
        assert proc.poll() is None, 'training ended before it could be killed'
        assert time.time() < deadline, f'iteration {KILL_AFTER} not reached after 300 s'
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    first_run = glob.glob(osp.join(broken, '*', 'vis_data', 'scalars.json'))
    killed_at = max(run_losses(first_run[0]))
    assert KILL_AFTER <= killed_at < EPOCHS * ITERS_PER_EPOCH
    assert open(osp.join(broken, 'last_checkpoint')).read().strip() == osp.join(broken, 'epoch_2.pth')

    resumed = subprocess.run(cmd + ['--resume'], env=env_with_venv(), cwd=REPO, capture_output=True,
                             text=True, timeout=600)
    out = resumed.stdout + resumed.stderr
    assert resumed.returncode == 0, out[-3000:]
    assert f'resumed epoch: 2, iter: {2 * ITERS_PER_EPOCH}' in out
    second_run = [p for p in glob.glob(osp.join(broken, '*', 'vis_data', 'scalars.json')) if p not in first_run]
    resumed_losses = run_losses(second_run[0])
    assert sorted(resumed_losses) == list(range(2 * ITERS_PER_EPOCH + 1, EPOCHS * ITERS_PER_EPOCH + 1))
    # bit-for-bit: the killed run before the kill and the resumed run after the checkpoint
    for it, loss in {**run_losses(first_run[0]), **resumed_losses}.items():
        assert loss == ref_losses[it], f'iteration {it}: {loss} != {ref_losses[it]} (uninterrupted)'

    a = load_checkpoint_file(osp.join(full, f'epoch_{EPOCHS}.pth'), map_location='cpu')
    b = load_checkpoint_file(osp.join(broken, f'epoch_{EPOCHS}.pth'), map_location='cpu')
    assert a['state_dict'].keys() == b['state_dict'].keys()
    for name, value in a['state_dict'].items():
        assert torch.equal(value, b['state_dict'][name]), name
    for key, state in a['optimizer']['state'].items():
        for field, value in state.items():
            assert torch.equal(value, b['optimizer']['state'][key][field]), (key, field)
