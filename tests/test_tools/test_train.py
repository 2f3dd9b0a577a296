"""tools/train.py and tools/dist_train.sh on the CPU: distributed training and resume after a kill."""
import glob
import os
import os.path as osp
import re
import signal
import subprocess
import sys
import time

import saim_mm  # noqa: F401
from saim_mm.checkpoint import load_checkpoint_file
from tests.conftest import REPO, free_port

DEMO = osp.join(REPO, 'configs/saim/demo_cpu.py')


def tiny_run_options(data_root: str, epochs: int, batch: int = 8) -> list:
    return [
        '--cfg-options', f'train_dataloader.dataset.data_root={data_root}',
        f'train_cfg.max_epochs={epochs}', f'train_dataloader.batch_size={batch}',
        'train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False',
        'default_hooks.checkpoint.interval=1', 'default_hooks.checkpoint.max_keep_ckpts=-1',
        'default_hooks.logger.interval=1', 'randomness.seed=0'
    ]


def env_with_venv() -> dict:
    env = dict(os.environ, PYTHON=sys.executable, PYTHONPATH=REPO)
    env.pop('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', None)
    env.pop('TORCH_FORCE_WEIGHTS_ONLY_LOAD', None)
    return env


def test_dist_train_two_cpu_processes(demo_data, tmp_path):
    work = str(tmp_path / 'work')
    env = dict(env_with_venv(), PORT=str(free_port()))
    proc = subprocess.run(
        ['bash', osp.join(REPO, 'tools/dist_train.sh'), DEMO, '2', '--work-dir', work,
         *tiny_run_options(demo_data, epochs=1)],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert 'Distributed training: True' in out
    # 32 images, batch 8 per process: 2 ranks share the epoch in 2 iterations (1 process would need 4)
    assert re.search(r'Epoch\(train\) \[1\]\[2/2\]', out), out[-3000:]
    assert sorted(osp.basename(p) for p in glob.glob(osp.join(work, '*.pth'))) == ['epoch_1.pth']
    ckpt = load_checkpoint_file(osp.join(work, 'epoch_1.pth'), map_location='cpu')  # weights_only, allow-list
    assert ckpt['meta']['iter'] == 2


def read_last_checkpoint(work: str) -> str:
    path = osp.join(work, 'last_checkpoint')
    return open(path).read().strip() if osp.exists(path) else ''


def test_resume_after_kill_continues_iterations_and_optimizer(demo_data, tmp_path):
    work = str(tmp_path / 'work')
    epochs, iters_per_epoch = 8, 4  # 32 images, batch 8
    cmd = [sys.executable, osp.join(REPO, 'tools/train.py'), DEMO, '--work-dir', work,
           *tiny_run_options(demo_data, epochs)]
    proc = subprocess.Popen(cmd, env=env_with_venv(), cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    while not read_last_checkpoint(work).endswith('epoch_2.pth'):
        assert proc.poll() is None, 'training ended before it could be killed'
        assert time.time() < deadline, 'no checkpoint after 300 s'
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = int(re.search(r'epoch_(\d+)\.pth', read_last_checkpoint(work)).group(1))
    assert killed_at < epochs and not osp.exists(osp.join(work, f'epoch_{epochs}.pth'))

    resumed = subprocess.run(cmd + ['--resume'], env=env_with_venv(), cwd=REPO, capture_output=True,
                             text=True, timeout=600)
    out = resumed.stdout + resumed.stderr
    assert resumed.returncode == 0, out[-3000:]
    assert f'resumed epoch: {killed_at}, iter: {killed_at * iters_per_epoch}' in out, out[-3000:]
    assert f'Epoch(train) [{killed_at + 1}][1/{iters_per_epoch}]' in out
    assert 'Epoch(train) [1][1/' not in out  # did not start over

    final = load_checkpoint_file(osp.join(work, f'epoch_{epochs}.pth'), map_location='cpu')  # weights_only
    assert final['meta']['iter'] == epochs * iters_per_epoch
    steps = {float(s['step']) for s in final['optimizer']['state'].values()}
    assert steps == {float(epochs * iters_per_epoch)}, 'AdamW state did not continue from the checkpoint'


def test_checkpoints_need_the_allow_list_not_a_global_switch(demo_data, tmp_path):
    """Without saim_mm's allow-list, torch refuses the checkpoint (weights_only stays on), also after
    ``import saim_mm`` (the import changes no global); saim_mm's reader applies the allow-list itself."""
    work = str(tmp_path / 'work')
    subprocess.run([sys.executable, osp.join(REPO, 'tools/train.py'), DEMO, '--work-dir', work,
                    *tiny_run_options(demo_data, epochs=1)],
                   env=env_with_venv(), cwd=REPO, check=True, capture_output=True, timeout=600)
    ckpt = osp.join(work, 'epoch_1.pth')
    plain = subprocess.run(
        [sys.executable, '-c', f'import torch; torch.load({ckpt!r})'], capture_output=True, text=True)
    assert plain.returncode != 0 and 'Weights only load failed' in plain.stderr
    imported = subprocess.run(
        [sys.executable, '-c', f'import saim_mm, torch; torch.load({ckpt!r}, weights_only=True)'],
        capture_output=True, text=True, cwd=REPO)
    assert imported.returncode != 0 and 'Weights only load failed' in imported.stderr
    with_saim = subprocess.run(
        [sys.executable, '-c', f'from saim_mm.checkpoint import load_checkpoint_file; load_checkpoint_file({ckpt!r})'],
        capture_output=True, text=True, cwd=REPO)
    assert with_saim.returncode == 0, with_saim.stderr[-2000:]
