"""Every shell command in README.md's code blocks is run by a test or named here as needing GPUs.

- The set-up and test commands are what CI runs (``.ci/run`` is checked to run them).
- The GPU/cluster commands are listed below; each must still be in the README (the list cannot go stale).
- Every other command runs here, on the CPU, in a scratch folder whose ``configs/`` and ``tools/`` link to
  the repository's. To keep the suite short, the commands are made smaller with arguments appended to
  them (fewer demo images, one epoch); nothing else in the command changes.
"""
import os
import os.path as osp
import subprocess
import sys

from tests.conftest import REPO
from tests.test_docs.markdown import code_blocks, make_sandbox, read, shell_commands, split_command

CI_COMMANDS = ('bash tools/setup_env.sh', '.venv/bin/python -m pytest tests')
OPT = 'model.backbone.init_cfg.checkpoint=$CKPT'
GPU_ONLY = (
    'tools/dist_train.sh configs/saim/vitb_800e.py 8',
    # needs the checkpoint of the ImageNet run above
    '.venv/bin/python tools/model_converters/saim2backbone.py work_dirs/vitb_800e/epoch_800.pth '
    'work_dirs/vitb_800e/backbone.pth',
    'CKPT=work_dirs/vitb_800e/backbone.pth',
    f'tools/dist_train.sh configs/benchmarks/imagenet/vitb_finetune_100e.py 8 --cfg-options {OPT}',
    f'tools/dist_train.sh configs/benchmarks/imagenet/vitb_linear_90e.py 8 --cfg-options {OPT}',
    'tools/dist_test.sh configs/benchmarks/imagenet/vitb_knn.py $CKPT 8',
    f'tools/dist_train.sh configs/benchmarks/imagenet/vitb_attentive_90e.py 8 --cfg-options {OPT}',
    f'tools/dist_train.sh configs/benchmarks/coco/mask-rcnn_saim-vitb_100e.py 8 --cfg-options {OPT}',
    f'tools/dist_train.sh configs/benchmarks/ade20k/upernet_saim-vitb_160k.py 8 --cfg-options {OPT}',
)
# Arguments appended to a script's command line in this test, to make it small.
SMALLER = {
    'tools/misc/make_demo_data.py': ('--train-per-class', '4', '--val-per-class', '1', '--size', '32'),
    'tools/train.py': ('--cfg-options', 'train_cfg.max_epochs=1'),
}
# What each CPU command must leave behind in the scratch folder.
OUTPUTS = {
    '.venv/bin/python tools/misc/make_demo_data.py data/demo && '
    '.venv/bin/python tools/train.py configs/saim/demo_cpu.py':
        ('data/demo/train/disc', 'data/demo/val/disc', 'work_dirs/demo_cpu/epoch_1.pth'),
}


def readme_commands():
    return [c for block in code_blocks(read('README.md')) for c in shell_commands(block)]


def test_every_readme_command_is_accounted_for():
    unknown = [c for c in readme_commands() if c not in CI_COMMANDS + GPU_ONLY and c not in OUTPUTS]
    assert not unknown, ('README commands that no test runs and that are not listed as GPU/cluster-only in '
                         f'{__file__}: {unknown}')


def test_the_lists_name_readme_commands():
    commands = readme_commands()
    stale = [c for c in CI_COMMANDS + GPU_ONLY + tuple(OUTPUTS) if c not in commands]
    assert not stale, f'listed here but not in README.md: {stale}'


def test_ci_runs_the_setup_and_test_commands():
    ci = read('.ci/run')
    for cmd in CI_COMMANDS:
        assert cmd in ci.splitlines(), f'.ci/run does not run {cmd!r}'


def run_cpu_command(cmd: str, cwd: str) -> None:
    env = dict(os.environ, PYTHONPATH=REPO)
    for argv in split_command(cmd):
        assert argv[0] == '.venv/bin/python', f'not a .venv/bin/python command: {argv}'
        argv = (sys.executable, ) + argv[1:] + SMALLER.get(argv[1], ())
        proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, f'{" ".join(argv)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}'


def test_cpu_commands_run(tmp_path):
    cwd = make_sandbox(str(tmp_path))
    for cmd, outputs in OUTPUTS.items():
        run_cpu_command(cmd, cwd)
        for out in outputs:
            assert osp.exists(osp.join(cwd, out)), f'{cmd!r} did not write {out}'
