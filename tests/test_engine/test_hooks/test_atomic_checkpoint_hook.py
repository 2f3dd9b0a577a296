"""AtomicCheckpointHook: a crash while saving never leaves a checkpoint that resume would pick half-written."""
import os
import os.path as osp
import re
import subprocess
import sys
import textwrap
import time

import pytest
import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.runner import Runner

import saim_mm  # noqa: F401
from saim_mm.checkpoint import CheckpointLoadError, load_checkpoint_file
from saim_mm.engine.hooks.atomic_checkpoint_hook import atomic_write_text
from tests.conftest import REPO, demo_train_cfg
from tests.test_tools.test_train import DEMO, env_with_venv, tiny_run_options

# tools/train.py with mmengine's file writes patched: the write of epoch_3's checkpoint stops half-way and
# the process dies on the spot (as with SIGKILL or a node failure).
CRASH_WHILE_SAVING = textwrap.dedent('''
    import os, runpy, sys
    from mmengine.fileio.backends.local_backend import LocalBackend
    put = LocalBackend.put

    def crashing_put(self, obj, filepath):
        if 'epoch_3' in str(filepath):
            with open(filepath, 'wb') as f:
                f.write(obj[:len(obj) // 2])
            os._exit(9)
        return put(self, obj, filepath)

    LocalBackend.put = crashing_put
    sys.argv = sys.argv[1:]
    runpy.run_path(sys.argv[0], run_name='__main__')
''')


def crash_while_saving_epoch3(data_root: str, work: str, hook: str, tmp_path) -> subprocess.CompletedProcess:
    script = tmp_path / 'crash_while_saving.py'
    script.write_text(CRASH_WHILE_SAVING)
    cmd = [sys.executable, str(script), osp.join(REPO, 'tools/train.py'), DEMO, '--work-dir', work,
           *tiny_run_options(data_root, epochs=4), 'default_hooks.checkpoint.max_keep_ckpts=1',
           f'default_hooks.checkpoint.type={hook}']
    return subprocess.run(cmd, env=env_with_venv(), cwd=REPO, capture_output=True, text=True, timeout=600)


def resume(data_root: str, work: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, osp.join(REPO, 'tools/train.py'), DEMO, '--work-dir', work, '--resume',
         *tiny_run_options(data_root, epochs=4), 'default_hooks.checkpoint.max_keep_ckpts=1'],
        env=env_with_venv(), cwd=REPO, capture_output=True, text=True, timeout=600)


def test_crash_while_saving_keeps_the_previous_checkpoint_and_resume_works(demo_data, tmp_path):
    work = str(tmp_path / 'work')
    crashed = crash_while_saving_epoch3(demo_data, work, 'AtomicCheckpointHook', tmp_path)
    assert crashed.returncode == 9, (crashed.stdout + crashed.stderr)[-3000:]
    # the half-written file never got a checkpoint's name; the previous checkpoint is still there
    assert sorted(f for f in os.listdir(work) if '.pth' in f) == ['epoch_2.pth', 'epoch_3.pth.tmp']
    assert open(osp.join(work, 'last_checkpoint')).read() == osp.join(work, 'epoch_2.pth')
    assert load_checkpoint_file(osp.join(work, 'epoch_2.pth'))['meta']['epoch'] == 2

    resumed = resume(demo_data, work)
    out = resumed.stdout + resumed.stderr
    assert resumed.returncode == 0, out[-3000:]
    # mmengine's auto-resume takes the file named in last_checkpoint
    assert f'Auto resumed from the latest checkpoint {osp.join(work, "epoch_2.pth")}' in out
    assert 'resumed epoch: 2, iter: 8' in out
    assert sorted(f for f in os.listdir(work) if '.pth' in f) == ['epoch_4.pth']  # the .tmp was replaced


def test_mmengine_checkpoint_hook_loses_the_run_in_the_same_crash(demo_data, tmp_path):
    """Why the hook exists: mmengine 0.10 deletes the old checkpoint first and writes the new one in place."""
    work = str(tmp_path / 'work')
    crashed = crash_while_saving_epoch3(demo_data, work, 'CheckpointHook', tmp_path)
    assert crashed.returncode == 9
    assert sorted(f for f in os.listdir(work) if '.pth' in f) == ['epoch_3.pth']  # truncated; epoch_2 deleted
    assert open(osp.join(work, 'last_checkpoint')).read() == osp.join(work, 'epoch_2.pth')  # gone
    with pytest.raises(CheckpointLoadError, match='epoch_3.pth .*truncated or corrupt'):
        load_checkpoint_file(osp.join(work, 'epoch_3.pth'))
    resumed = resume(demo_data, work)  # nothing complete is left to resume from
    assert resumed.returncode != 0
    assert f'{osp.join(work, "epoch_2.pth")} can not be found' in resumed.stderr  # mmengine's loader


def test_last_checkpoint_is_replaced_atomically(tmp_path, monkeypatch):
    path = str(tmp_path / 'last_checkpoint')
    atomic_write_text(path, '/work/epoch_1.pth')

    def crash(*args):
        raise KeyboardInterrupt  # the process is stopped between writing the temp file and renaming it

    monkeypatch.setattr(os, 'replace', crash)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_text(path, '/work/epoch_2.pth')
    assert open(path).read() == '/work/epoch_1.pth'


def test_non_finite_weights_are_never_saved(demo_data, tmp_path):
    work = str(tmp_path / 'work')
    runner = Runner.from_cfg(demo_train_cfg(demo_data, work, epochs=1))
    runner.train()
    assert open(osp.join(work, 'last_checkpoint')).read() == osp.join(work, 'epoch_1.pth')
    with torch.no_grad():
        runner.model.neck.ln.weight[3] = float('nan')
    hook = next(h for h in runner.hooks if type(h).__name__ == 'AtomicCheckpointHook')
    with pytest.raises(FloatingPointError, match=r'Refusing to save epoch_2.pth after iteration 4: parameters '
                                                 r"\['neck.ln.weight'\].*last good checkpoint is .*epoch_1.pth"):
        hook._save_checkpoint(runner)
    assert sorted(f for f in os.listdir(work) if '.pth' in f) == ['epoch_1.pth']
    assert open(osp.join(work, 'last_checkpoint')).read() == osp.join(work, 'epoch_1.pth')


def test_resume_from_a_weights_only_file_names_the_file(demo_data, tmp_path):
    weights = str(tmp_path / 'published.pth')
    torch.save({'state_dict': {}}, weights)
    runner = Runner.from_cfg(demo_train_cfg(demo_data, str(tmp_path / 'work'), resume=True, load_from=weights))
    with pytest.raises(ValueError, match=rf"Cannot resume from {weights}: it is not an mmengine training "
                                         r"checkpoint \(it lacks \['meta', 'message_hub'\]"):
        runner.train()


class NanOnRankOne(Hook):
    """After the last iteration of the epoch, make one parameter NaN on rank 1 only (as in one FSDP shard)."""
    priority = 'LOWEST'

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if get_rank() == 1 and batch_idx == len(runner.train_dataloader) - 1:
            model = runner.model.module if hasattr(runner.model, 'module') else runner.model
            with torch.no_grad():
                model.neck.ln.weight[0] = float('nan')
        runner.message_hub.update_info('nan_at', time.time())


def non_finite_on_one_rank(rank: int, data_root: str, work: str, out: str) -> None:
    from saim_mm.utils import setup_cpu_distributed
    cfg = demo_train_cfg(data_root, work, epochs=1, launcher='pytorch')
    setup_cpu_distributed(cfg)
    runner = Runner.from_cfg(cfg)
    runner.register_hook(NanOnRankOne())
    try:
        runner.train()
    except FloatingPointError as err:
        waited = time.time() - runner.message_hub.get_info('nan_at')
        with open(osp.join(out, f'rank{rank}.txt'), 'w') as f:
            f.write(f'{waited:.3f}\n{err}')


def test_non_finite_weights_on_one_rank_stop_every_rank_before_saving(demo_data, tmp_path):
    """Two gloo ranks, only rank 1's parameters non-finite (as a shard under FSDP): both ranks raise
    FloatingPointError naming the iteration within 60 s of the NaN, and no checkpoint file is written (the
    subprocess limit only guards against a hang; start-up of two processes on a loaded machine is not timed)."""
    work, out = tmp_path / 'work', tmp_path / 'out'
    out.mkdir()
    script = ('import sys; from tests.conftest import spawn_gloo; '
              'from tests.test_engine.test_hooks.test_atomic_checkpoint_hook import non_finite_on_one_rank; '
              'spawn_gloo(non_finite_on_one_rank, *sys.argv[1:])')
    subprocess.run([sys.executable, '-c', script, demo_data, str(work), str(out)], cwd=REPO, env=env_with_venv(),
                   timeout=600, check=True, capture_output=True)
    waited, messages = zip(*((float(t), m) for t, m in ((out / f'rank{r}.txt').read_text().split('\n', 1)
                                                          for r in (0, 1))))
    assert max(waited) < 60, waited
    for rank, message in enumerate(messages):
        assert re.match(r'Refusing to save epoch_1.pth after iteration \d+: parameters', message), message
        assert f'on rank(s) [1] (this is rank {rank})' in message
    assert "['neck.ln.weight']" in messages[1] and 'neck.ln.weight' not in messages[0]
    assert sorted(str(p) for p in work.rglob('*.pth*')) == []
