"""The study's rows and their pre-training runs: each row's config with the study's data, sizes, epochs and
seed, run by ``tools/train.py`` in a subprocess."""
import copy
import json
import math
import os
import os.path as osp
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

from mmengine.config import Config

from .data import REPO

DEMO = osp.join(REPO, 'configs/saim/demo_cpu.py')
MAE = osp.join(REPO, 'configs/baselines/mae_vit-demo-p4_cpu.py')
RANDOM = 'random init'


class Row(NamedTuple):
    """One encoder of the study: a pre-training config (with model overrides), or an untrained one.

    ``teacher_from`` names another pre-trained row whose final checkpoint of the same seed is the
    ``checkpoint`` of this row's ``PretrainedTeacher`` (``model.head.teacher``): that row is pre-trained first.
    """
    name: str
    config: str
    model_options: dict
    pretrain: bool
    teacher_from: Optional[str] = None


# a new row is one more entry here (or a config given with --configs)
DEFAULT_ROWS = {
    'SAIM stochastic': Row('SAIM stochastic', DEMO, {}, True),
    'SAIM raster': Row('SAIM raster', DEMO, {'order': 'raster'}, True),
    'MAE': Row('MAE', MAE, {}, True),
    RANDOM: Row(RANDOM, DEMO, {}, False),
}


def config_row(config: str) -> Row:
    """The row of a pre-training config given by path, named by its path under the repository."""
    path = osp.abspath(config)
    return Row(osp.splitext(osp.relpath(path, REPO))[0], path, {}, True)


def with_teachers(rows: List[Row], pairs: Sequence[str]) -> List[Row]:
    """``rows`` with ``teacher_from`` set from ``ROW=SOURCE`` pairs (``--teacher-from``).

    Raises:
        ValueError: a pair without ``=``, a row or source that is not a row of the study, a source that is not
            pre-trained or is the row itself, a row given twice, or a row whose config has no
            ``PretrainedTeacher`` at ``model.head.teacher``.
    """
    by_name = {row.name: row for row in rows}
    sources: Dict[str, str] = {}
    for pair in pairs:
        name, sep, source = pair.partition('=')
        if not sep:
            raise ValueError(f'--teacher-from takes ROW=SOURCE (two row names), got {pair!r}.')
        # a row of --configs may also be named by its config file
        name, source = (config_row(v).name if v.endswith('.py') else v for v in (name, source))
        for key, value in (('ROW', name), ('SOURCE', source)):
            if value not in by_name:
                raise ValueError(f'--teacher-from {pair!r}: {key} {value!r} is not a row of the study; rows: '
                                 f'{sorted(by_name)}.')
        if name in sources:
            raise ValueError(f'--teacher-from gives row {name!r} twice.')
        if name == source or not by_name[source].pretrain:
            raise ValueError(f'--teacher-from {pair!r}: SOURCE must be another, pre-trained row, got {source!r}.')
        teacher = (Config.fromfile(by_name[name].config).model.get('head') or {}).get('teacher') or {}
        if teacher.get('type') != 'PretrainedTeacher':
            raise ValueError(f'--teacher-from {pair!r}: {by_name[name].config} has no PretrainedTeacher at '
                             f"model.head.teacher (got {teacher.get('type')!r}).")
        sources[name] = source
    return [row._replace(teacher_from=sources.get(row.name, row.teacher_from)) for row in rows]


def dependency_levels(rows: Sequence[Row]) -> List[List[Row]]:
    """``rows`` in waves: a row comes in a later wave than the row it takes its teacher from.

    Raises:
        ValueError: a cycle of ``teacher_from`` (the rows named).
    """
    left, done, levels = list(rows), set(), []
    while left:
        ready = [row for row in left if row.teacher_from is None or row.teacher_from in done]
        if not ready:
            raise ValueError(f'--teacher-from makes a cycle: {[f"{r.name}={r.teacher_from}" for r in left]}.')
        levels.append(ready)
        done.update(row.name for row in ready)
        left = [row for row in left if row.name not in done]
    return levels


def final_checkpoint(root: str, row: Row, seed: int, epochs: int) -> str:
    """The checkpoint ``tools/train.py`` writes at the end of the row's run of ``seed``."""
    return osp.join(work_dir_of(root, row, seed), f'epoch_{epochs}.pth')


def work_dir_of(root: str, row: Row, seed: int) -> str:
    """``root/<row name, / and spaces as _>/seed<seed>``."""
    return osp.join(root, row.name.replace('/', '_').replace(' ', '_'), f'seed{seed}')


def train_pipeline(img_size: int) -> list:
    """The pre-training pipeline of the SAIM demo (RandomResizedCrop + flip) at ``img_size``."""
    pipeline = copy.deepcopy(Config.fromfile(DEMO).train_pipeline)
    for transform in pipeline:
        if transform['type'] == 'RandomResizedCrop':
            transform['scale'] = img_size
    return pipeline


def fit_schedule(schedulers: list, old_epochs: int, epochs: int, iters_per_epoch: int) -> list:
    """Epoch-based parameter schedulers stretched from ``old_epochs`` to ``epochs``, stepped per iteration.

    Warm-up and decay keep their share of the run; a scheduler that would span no iteration (a warm-up in
    a 1-epoch run) is dropped.

    Raises:
        ValueError: a scheduler is iteration-based (its length does not follow the epochs).
    """
    to_iters = epochs / old_epochs * iters_per_epoch
    fitted = []
    for sched in copy.deepcopy(schedulers):
        if not sched.get('by_epoch', True):
            raise ValueError(f'the study stretches epoch-based schedules only, got {sched}.')
        begin = round(sched.get('begin', 0) * to_iters)
        end = round(min(sched.get('end', old_epochs), old_epochs) * to_iters)
        if end <= begin:
            continue
        sched.pop('convert_to_iter_based', None)
        sched.update(begin=begin, end=end, by_epoch=False)
        if 'T_max' in sched:
            sched['T_max'] = max(round(sched['T_max'] * to_iters), 1)
        fitted.append(sched)
    return fitted


def row_config(row: Row, data_root: str, img_size: int, patch_size: int, epochs: int, batch_size: int, seed: int,
               num_train: int, work_dir: str, teacher_checkpoint: Optional[str] = None) -> Config:
    """The config of one pre-training run of ``row``: its file with the study's data, sizes and schedule.

    With ``teacher_checkpoint`` (the final checkpoint of the row ``row.teacher_from``), the
    ``PretrainedTeacher`` reads it, its ViT at the study's image and patch size.

    Raises:
        ValueError: the config's training loop is not epoch-based.
    """
    cfg = Config.fromfile(row.config)
    for key, value in row.model_options.items():
        cfg.model[key] = value
    model = cfg.model
    model.backbone.img_size = img_size
    model.backbone.patch_size = patch_size
    for part in ('neck', 'head'):
        if isinstance(model.get(part), dict) and 'patch_size' in model[part]:
            model[part].patch_size = patch_size
    if isinstance(model.get('neck'), dict) and 'num_patches' in model.neck:  # MAE's decoder
        model.neck.num_patches = (img_size // patch_size)**2
    if teacher_checkpoint is not None:
        teacher = model.head.teacher
        teacher.checkpoint = teacher_checkpoint
        teacher.model.update(img_size=img_size, patch_size=patch_size)
    if cfg.train_cfg.get('type', 'EpochBasedTrainLoop') != 'EpochBasedTrainLoop':
        raise ValueError(f'{row.config}: the study runs epoch-based pre-training (EpochBasedTrainLoop), got '
                         f'train_cfg.type={cfg.train_cfg.type!r}.')
    loader = cfg.train_dataloader
    loader.batch_size = batch_size
    loader.dataset = dict(type='CustomDataset', data_root=data_root, data_prefix='train', with_label=False,
                          pipeline=train_pipeline(img_size))
    cfg.param_scheduler = fit_schedule(cfg.param_scheduler, cfg.train_cfg.max_epochs, epochs,
                                       math.ceil(num_train / batch_size))
    cfg.train_cfg.max_epochs = epochs
    cfg.default_hooks.checkpoint.update(interval=epochs, max_keep_ckpts=1)
    cfg.default_hooks.logger.interval = 1
    cfg.randomness = dict(cfg.get('randomness') or {}, seed=seed)
    cfg.work_dir = work_dir
    cfg.resume, cfg.load_from = False, None
    if cfg.get('visualizer') is not None:  # scalars.json is all the study reads
        cfg.visualizer.vis_backends = [dict(type='LocalVisBackend')]
    return cfg


def pretrain(cfg: Config, work_dir: str, threads: Optional[int] = None) -> Tuple[str, float]:
    """Dump ``cfg`` into ``work_dir`` and run ``tools/train.py`` on it (with ``threads`` intra-op threads).

    Returns:
        tuple: the final checkpoint path and the wall time (s).

    Raises:
        RuntimeError: the run failed (the tail of its log).
    """
    t0 = time.time()
    os.makedirs(work_dir, exist_ok=True)
    config = osp.join(work_dir, 'pretrain_config.py')
    cfg.dump(config)
    env = dict(os.environ, PYTHONPATH=REPO)
    if threads is not None:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    log = osp.join(work_dir, 'train.log')
    with open(log, 'w') as f:
        proc = subprocess.run([sys.executable, osp.join(REPO, 'tools/train.py'), config, '--work-dir', work_dir],
                              cwd=REPO, stdout=f, stderr=subprocess.STDOUT, env=env)
    if proc.returncode != 0:
        with open(log) as f:
            tail = f.read()[-3000:]
        raise RuntimeError(f'pre-training of {config} failed (log {log}):\n{tail}')
    return osp.join(work_dir, f'epoch_{cfg.train_cfg.max_epochs}.pth'), time.time() - t0


def loss_curve(work_dir: str) -> List[Tuple[int, float]]:
    """(iteration, loss) of the last run in ``work_dir``, from mmengine's scalars.json."""
    runs = sorted(d for d in os.listdir(work_dir) if osp.isdir(osp.join(work_dir, d, 'vis_data')))
    with open(osp.join(work_dir, runs[-1], 'vis_data', 'scalars.json')) as f:
        return [(r['iter'], r['loss']) for r in map(json.loads, f) if 'loss' in r]


def pretrain_all(runs: Dict[Tuple[str, int], Tuple[Config, str]], jobs: int, t0: float) -> Dict[Tuple[str, int], dict]:
    """Every (row, seed) pre-training of ``runs`` ((config, work dir) each), ``jobs`` at a time, each with
    cpu_count / jobs threads.

    Returns:
        dict: (row, seed) -> ``checkpoint``, ``pretrain_s``, ``curve`` (iteration, loss) and ``final_loss``.
    """
    threads = max(1, (os.cpu_count() or 1) // jobs) if jobs > 1 else None
    done = {}
    with ThreadPoolExecutor(jobs) as pool:
        futures = {pool.submit(pretrain, cfg, wd, threads): (key, wd) for key, (cfg, wd) in runs.items()}
        for future in as_completed(futures):
            key, wd = futures[future]
            checkpoint, seconds = future.result()
            curve = loss_curve(wd)
            done[key] = dict(checkpoint=checkpoint, pretrain_s=seconds, curve=curve, final_loss=curve[-1][1])
            print(f'pre-trained {key[0]}, seed {key[1]}: loss {curve[0][1]:.3f} -> {curve[-1][1]:.3f} in '
                  f'{seconds:.0f} s [{time.time() - t0:.0f} s]', flush=True)
    return done
