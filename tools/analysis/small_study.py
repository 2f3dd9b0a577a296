"""A small multi-seed study on the CPU: SAIM (stochastic and raster order) against MAE and a random encoder.

A smoke version of the paper's comparison (Tables 1 and 3), not a substitute for ImageNet. Steps:

1. data: ``--data-root DIR`` with class folders ``DIR/train/<class>/*`` and ``DIR/val/<class>/*`` (images
   of any size and any format mmcv reads; greyscale, palette and RGBA images become RGB), or, without it,
   the synthetic 4-class set of ``tools/misc/make_demo_data.py`` (discs, squares, stripes, checkers);
2. pre-training of each row on the training images (labels unused), once per seed (``--seeds``; the seed is
   ``randomness.seed`` of the run and the probes' seed): each row's config is built here
   (data, pipelines, ``--img-size``, ``--patch-size``, epochs, batch, seed, the schedule scaled to the
   epochs), dumped into its work dir and run by ``tools/train.py`` in a subprocess. Rows:

   - ``SAIM stochastic``: ``configs/saim/demo_cpu.py``, the paper's method on a tiny ViT (width 96,
     4 blocks, 3 heads);
   - ``SAIM raster``: the same with ``model.order='raster'`` (the ViT-iGPT baseline; decoder kept);
   - ``MAE``: mmpretrain's own MAE, ``configs/baselines/mae_vit-demo-p4_cpu.py`` (the same encoder, mask
     ratio 0.75, norm-pix loss, a 64-wide 2-block decoder; the same data, epochs, batch and optimiser);
   - every config given with ``--configs`` (named by its file);
   - ``random init``: the tiny ViT untrained, one initialisation per seed.

   Every row sees the same images with the same augmentation (the SAIM demo's RandomResizedCrop to
   ``--img-size`` and flip);
3. frozen features of every encoder, in its plain (unmasked, non-causal) forward
   (:func:`saim_mm.apis.extract_features`; MAE's encoder is read as mmpretrain's ``VisionTransformer``
   from the ``backbone.*`` weights of its checkpoint) on a fixed resize (short side) + centre crop to
   ``--img-size``: the cls token after the final norm, the mean of the patch tokens and all patch tokens;
4. three protocols on the cached features, each seeded:

   - **linear**: BatchNorm without affine + Linear (MAE's probe), trained with mmpretrain's LARS
     (momentum 0.9, weight decay 0, cosine schedule) on the cls token, and as a second column on the
     mean of the patch tokens; the LARS lr defaults to 6.4, the recipe's 0.1 x batch / 256 at the
     16384-image batch of ImageNet probing, because a few thousand images give too few steps for the
     small-batch value to converge;
   - **attentive**: :class:`saim_mm.models.heads.AttentiveProbeHead` (a learned query cross-attending
     over the patch tokens, then a linear classifier), trained alone with AdamW and a cosine schedule;
   - **k-NN**: :func:`saim_mm.evaluation.knn_classify`, cosine similarity, k = 20, temperature 0.07,
     on the cls token and on the mean of the patch tokens;

   top-1 (%) on the held-out images by mmpretrain's ``Accuracy``;
5. a markdown table (mean ± sample standard deviation over the seeds), ``study.json`` (every per-seed
   figure, the arguments, the wall and CPU time and the machine), ``loss_curves.png`` (pre-training loss
   per iteration, mean over seeds with a ±1 std band) and ``protocols.png`` (mean top-1 per row and
   protocol with std error bars).

The defaults (3 seeds x 4 rows, 1024 synthetic training images, 30 epochs at batch 64) took 28.5 min on
2 quiet CPU cores (README, "A small study you can run here"). ``--jobs N`` runs N pre-trainings at once,
each with cpu_count / N threads (on a
machine that others share, ``--jobs 2`` or ``OMP_NUM_THREADS=1`` avoids the slow-down of OpenMP threads
waiting for busy cores).

    python tools/analysis/small_study.py --work-dir work_dirs/small_study
    python tools/analysis/small_study.py --data-root data/my_images --img-size 64 --patch-size 8
    python tools/analysis/small_study.py --seeds 0 --rows 'SAIM stochastic' MAE \\
        --configs configs/saim/variants/demo/partial_1_6.py
"""
import argparse
import copy
import inspect
import json
import math
import os
import os.path as osp
import platform
import resource
import statistics
import subprocess
import sys
import time
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO = osp.join(REPO, 'configs/saim/demo_cpu.py')
MAE = osp.join(REPO, 'configs/baselines/mae_vit-demo-p4_cpu.py')
RANDOM = 'random init'
# protocol key -> column title
PROTOCOLS = {
    'linear_cls': 'linear (cls)',
    'linear_mean': 'linear (mean-pool)',
    'attentive': 'attentive (patch tokens)',
    'knn_cls': 'k-NN (cls)',
    'knn_mean': 'k-NN (mean-pool)',
}


class Row(NamedTuple):
    """One encoder of the study: a pre-training config (with model overrides), or an untrained one."""
    name: str
    config: str
    model_options: dict
    pretrain: bool


DEFAULT_ROWS = {
    'SAIM stochastic': Row('SAIM stochastic', DEMO, {}, True),
    'SAIM raster': Row('SAIM raster', DEMO, {'order': 'raster'}, True),
    'MAE': Row('MAE', MAE, {}, True),
    RANDOM: Row(RANDOM, DEMO, {}, False),
}


class ImageFolderError(ValueError):
    """A ``--data-root`` that is not a class-folder data set; the message names the folder."""


def image_extensions() -> Tuple[str, ...]:
    """The file extensions mmpretrain's ``CustomDataset`` reads."""
    from mmpretrain.datasets import CustomDataset
    return tuple(inspect.signature(CustomDataset.__init__).parameters['extensions'].default)


def check_image_folder(root: str) -> List[str]:
    """The class names of a ``root/{train,val}/<class>/`` data set, after checking its layout.

    Raises:
        ImageFolderError: ``root``, ``train/`` or ``val/`` is missing, a split has no class folders, the
            class folders of train and val differ, or a class folder holds no image.
    """
    if not osp.isdir(root):
        raise ImageFolderError(f'--data-root {root} is not a folder.')
    extensions = image_extensions()
    classes = {}
    for split in ('train', 'val'):
        folder = osp.join(root, split)
        if not osp.isdir(folder):
            raise ImageFolderError(f'{folder} does not exist: --data-root must hold train/<class>/ and '
                                   'val/<class>/ folders of images.')
        names = sorted(d for d in os.listdir(folder) if osp.isdir(osp.join(folder, d)))
        if not names:
            raise ImageFolderError(f'{folder} has no class folders: put the images of each class in '
                                   f'{folder}/<class>/.')
        for name in names:
            images = [f for _, _, files in os.walk(osp.join(folder, name)) for f in files
                      if f.lower().endswith(extensions)]
            if not images:
                raise ImageFolderError(f'class folder {osp.join(folder, name)} holds no image '
                                       f'(extensions read: {", ".join(extensions)}).')
        classes[split] = names
    if classes['train'] != classes['val']:
        only_train = sorted(set(classes['train']) - set(classes['val']))
        only_val = sorted(set(classes['val']) - set(classes['train']))
        raise ImageFolderError(f'the class folders of {osp.join(root, "train")} and {osp.join(root, "val")} '
                               f'differ: only in train: {only_train}, only in val: {only_val}.')
    return classes['train']


def train_pipeline(img_size: int) -> list:
    """The pre-training pipeline of the SAIM demo (RandomResizedCrop + flip) at ``img_size``."""
    from mmengine.config import Config
    pipeline = copy.deepcopy(Config.fromfile(DEMO).train_pipeline)
    for transform in pipeline:
        if transform['type'] == 'RandomResizedCrop':
            transform['scale'] = img_size
    return pipeline


def eval_pipeline(img_size: int) -> list:
    """Fixed, deterministic input of the frozen encoders: short side to ``img_size``, centre crop."""
    return [
        dict(type='CheckedLoadImageFromFile'),
        dict(type='ResizeEdge', scale=img_size, edge='short', backend='pillow', interpolation='bicubic'),
        dict(type='CenterCrop', crop_size=img_size),
        dict(type='PackInputs'),
    ]


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
            raise ValueError(f'small_study stretches epoch-based schedules only, got {sched}.')
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


def row_config(row: Row, data_root: str, args: argparse.Namespace, seed: int, num_train: int,
               work_dir: str):
    """The config of one pre-training run of ``row``: its file with the study's data, sizes and schedule."""
    from mmengine.config import Config
    cfg = Config.fromfile(row.config)
    for key, value in row.model_options.items():
        cfg.model[key] = value
    model = cfg.model
    model.backbone.img_size = args.img_size
    model.backbone.patch_size = args.patch_size
    for part in ('neck', 'head'):
        if isinstance(model.get(part), dict) and 'patch_size' in model[part]:
            model[part].patch_size = args.patch_size
    if isinstance(model.get('neck'), dict) and 'num_patches' in model.neck:  # MAE's decoder
        model.neck.num_patches = (args.img_size // args.patch_size)**2
    if cfg.train_cfg.get('type', 'EpochBasedTrainLoop') != 'EpochBasedTrainLoop':
        raise ValueError(f'{row.config}: small_study runs epoch-based pre-training (EpochBasedTrainLoop), '
                         f'got {cfg.train_cfg.type}.')
    loader = cfg.train_dataloader
    loader.batch_size = args.batch_size
    loader.dataset = dict(type='CustomDataset', data_root=data_root, data_prefix='train', with_label=False,
                          pipeline=train_pipeline(args.img_size))
    iters_per_epoch = math.ceil(num_train / args.batch_size)
    cfg.param_scheduler = fit_schedule(cfg.param_scheduler, cfg.train_cfg.max_epochs, args.epochs,
                                       iters_per_epoch)
    cfg.train_cfg.max_epochs = args.epochs
    cfg.default_hooks.checkpoint.update(interval=args.epochs, max_keep_ckpts=1)
    cfg.default_hooks.logger.interval = 1
    cfg.randomness = dict(cfg.get('randomness') or {}, seed=seed)
    cfg.work_dir = work_dir
    cfg.resume, cfg.load_from = False, None
    if cfg.get('visualizer') is not None:  # scalars.json is all the study reads
        cfg.visualizer.vis_backends = [dict(type='LocalVisBackend')]
    return cfg


def pretrain(cfg, work_dir: str, threads: Optional[int] = None) -> Tuple[str, float]:
    """Dump ``cfg`` into ``work_dir`` and run ``tools/train.py`` on it (with ``threads`` intra-op threads).

    Returns:
        tuple: the final checkpoint path and the wall time (s).
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


def pretrain_all(runs: Dict[Tuple[str, int], Tuple[object, str]], jobs: int, t0: float) -> Dict[Tuple[str, int], dict]:
    """Every (row, seed) pre-training of ``runs`` ((config, work dir) each), ``jobs`` at a time.

    Returns:
        dict: (row, seed) -> ``checkpoint``, ``pretrain_s``, ``curve`` (iteration, loss) and ``final_loss``.
    """
    from concurrent.futures import ThreadPoolExecutor, as_completed
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


def loss_curve(work_dir: str) -> List[Tuple[int, float]]:
    """(iteration, loss) of the last run in ``work_dir``, from mmengine's scalars.json."""
    runs = sorted(d for d in os.listdir(work_dir) if osp.isdir(osp.join(work_dir, d, 'vis_data')))
    with open(osp.join(work_dir, runs[-1], 'vis_data', 'scalars.json')) as f:
        return [(r['iter'], r['loss']) for r in map(json.loads, f) if 'loss' in r]


def load_images(root: str, split: str, img_size: int) -> Tuple[Tensor, Tensor, List[str]]:
    """Every image of ``root/split/<class>/`` through :func:`eval_pipeline`: (N, 3, S, S) uint8 as
    decoded (BGR), (N,) labels and the class names."""
    from mmengine.dataset import default_collate
    from mmpretrain.datasets import CustomDataset
    dataset = CustomDataset(data_root=root, data_prefix=split, pipeline=eval_pipeline(img_size))
    loader = torch.utils.data.DataLoader(dataset, batch_size=256, collate_fn=default_collate)
    images, labels = [], []
    for batch in loader:
        images.append(batch['inputs'])
        labels.append(torch.cat([s.gt_label for s in batch['data_samples']]))
    return torch.cat(images), torch.cat(labels), list(dataset.metainfo['classes'])


def build_encoder(cfg, checkpoint: Optional[str], seed: int) -> nn.Module:
    """The frozen encoder of a row (its ``backbone`` and ``data_preprocessor``), in eval mode.

    SAIM models are built from ``cfg`` (seeded init) and loaded from ``checkpoint``; their plain forward is
    the transfer-time ViT. An MAE encoder (``MAEViT``, whose forward masks) becomes mmpretrain's
    ``VisionTransformer`` of the same architecture, loaded strictly from the ``backbone.*`` weights of the
    checkpoint (read weights-only).
    """
    from mmengine.runner import load_checkpoint
    from mmpretrain.models import MAEViT, VisionTransformer
    from mmpretrain.registry import MODELS

    from saim_mm.checkpoint import extract_backbone, load_state_dict_file, strip_prefix
    model_cfg = copy.deepcopy(cfg.model)
    if model_cfg.get('data_preprocessor') is None:
        model_cfg.data_preprocessor = cfg.get('data_preprocessor')
    torch.manual_seed(seed)
    if issubclass(MODELS.get(model_cfg.backbone.type), MAEViT):
        if checkpoint is None:
            raise ValueError('an MAE row needs a pre-training checkpoint.')
        kwargs = {k: v for k, v in model_cfg.backbone.items() if k not in ('type', 'mask_ratio', 'init_cfg')}
        model = nn.Module()
        model.backbone = VisionTransformer(**kwargs)
        state_dict, _ = load_state_dict_file(checkpoint)
        backbone, _ = extract_backbone(state_dict)
        model.backbone.load_state_dict(strip_prefix(backbone, 'backbone.'))
        model.data_preprocessor = MODELS.build(model_cfg.data_preprocessor)
        return model.eval()
    model = MODELS.build(model_cfg)
    model.init_weights()
    if checkpoint is not None:
        load_checkpoint(model, checkpoint, map_location='cpu', strict=True, logger='silent')
    return model.eval()


@torch.no_grad()
def features(model: nn.Module, images: Tensor, batch: int = 256) -> Tuple[Tensor, Tensor, Tensor]:
    """(cls token (N, C), mean of the patch tokens (N, C), patch tokens (N, L, C)) of decoded images."""
    from saim_mm.apis import extract_features
    out = []
    for chunk in images.split(batch):
        x = model.data_preprocessor(dict(inputs=chunk, data_samples=None), False)['inputs']
        out.append(extract_features(model, x, pool=('cls', 'mean', 'patches')))
    return tuple(torch.cat(parts) for parts in zip(*out))


def top1(scores: Tensor, labels: Tensor) -> float:
    """Top-1 accuracy (%) by mmpretrain's ``Accuracy``."""
    from mmpretrain.evaluation import Accuracy
    return float(Accuracy.calculate(scores, labels, topk=(1, ))[0][0])


def train_head(head: nn.Module, optim: torch.optim.Optimizer, train_x: Tensor, train_y: Tensor,
               epochs: int, batch: int) -> None:
    """Minibatch cross-entropy training of ``head`` on cached features, cosine lr per step.

    A last batch of one sample (which BatchNorm cannot normalise) is skipped.
    """
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(optim, epochs * math.ceil(len(train_x) / batch))
    head.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(train_x)).split(batch):
            if len(idx) < 2:
                continue
            loss = nn.functional.cross_entropy(head(train_x[idx]), train_y[idx])
            optim.zero_grad()
            loss.backward()
            optim.step()
            sched.step()
    head.eval()


def linear_probe(train_x: Tensor, train_y: Tensor, val_x: Tensor, val_y: Tensor, num_classes: int,
                 args: argparse.Namespace, seed: int) -> float:
    """BatchNorm (no affine) + Linear with LARS on cached (N, C) features; top-1 (%)."""
    from mmpretrain.engine.optimizers import LARS
    torch.manual_seed(seed)
    head = nn.Sequential(nn.BatchNorm1d(train_x.shape[1], affine=False), nn.Linear(train_x.shape[1], num_classes))
    nn.init.trunc_normal_(head[1].weight, std=0.01)
    nn.init.zeros_(head[1].bias)
    optim = LARS(head.parameters(), lr=args.probe_lr, momentum=0.9, weight_decay=0.0)
    train_head(head, optim, train_x, train_y, args.probe_epochs, args.probe_batch)
    with torch.no_grad():
        return top1(head(val_x), val_y)


def attentive_probe(train_x: Tensor, train_y: Tensor, val_x: Tensor, val_y: Tensor, num_classes: int,
                    num_heads: int, args: argparse.Namespace, seed: int) -> float:
    """``AttentiveProbeHead`` with AdamW (its own parameters only) on cached (N, L, C) patch tokens; top-1 (%)."""
    from saim_mm.models.heads import AttentiveProbeHead
    torch.manual_seed(seed)
    head = AttentiveProbeHead(num_classes, train_x.shape[-1], num_heads=num_heads)
    head.init_weights()
    optim = torch.optim.AdamW(head.parameters(), lr=args.attentive_lr, weight_decay=args.attentive_wd)
    train_head(head, optim, train_x, train_y, args.attentive_epochs, args.probe_batch)
    with torch.no_grad():
        return top1(torch.cat([head(x) for x in val_x.split(args.probe_batch)]), val_y)


def knn_top1(train_x: Tensor, train_y: Tensor, val_x: Tensor, val_y: Tensor, num_classes: int,
             args: argparse.Namespace) -> float:
    """Weighted k-NN (cosine, temperature) of the held-out features among the training ones; top-1 (%)."""
    from saim_mm.evaluation import knn_classify
    scores = knn_classify(train_x, train_y, val_x, num_classes, k=min(args.knn_k, len(train_x)),
                          temperature=args.knn_t)
    return top1(scores, val_y)


def mean_std(values: Sequence[float]) -> Dict[str, Optional[float]]:
    """Mean and sample standard deviation (n - 1; None for one value)."""
    return dict(mean=statistics.mean(values), std=statistics.stdev(values) if len(values) > 1 else None)


def cell(summary: Optional[dict], digits: int = 1) -> str:
    """``mean ± std`` for the table (just the mean with one seed, ``-`` when absent)."""
    if summary is None:
        return '-'
    if summary['std'] is None:
        return f"{summary['mean']:.{digits}f}"
    return f"{summary['mean']:.{digits}f} ± {summary['std']:.{digits}f}"


def cpu_seconds() -> Dict[str, float]:
    """User + system CPU time so far: of this process (data, features, probes) and of its finished
    children (the pre-training runs)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return dict(main=own.ru_utime + own.ru_stime, children=children.ru_utime + children.ru_stime)


def machine() -> dict:
    """What the study ran on."""
    cpu = platform.processor()
    if osp.isfile('/proc/cpuinfo'):
        with open('/proc/cpuinfo') as f:
            cpu = next((line.split(':', 1)[1].strip() for line in f if line.startswith('model name')), cpu)
    return dict(platform=platform.platform(), cpu=cpu, cpu_count=os.cpu_count(),
                torch_threads=torch.get_num_threads(), python=platform.python_version(), torch=torch.__version__)


def plot_curves(rows: List[dict], out: str, title: str) -> None:
    """Mean pre-training loss per iteration of every pre-trained row, with a ±1 std band over the seeds."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for row in rows:
        curves = [r['curve'] for r in row['seeds'] if r.get('curve')]
        if not curves:
            continue
        n = min(len(c) for c in curves)
        iters = [it for it, _ in curves[0][:n]]
        losses = torch.tensor([[v for _, v in c[:n]] for c in curves])
        mean = losses.mean(0)
        line, = ax.plot(iters, mean, label=row['name'])
        if len(curves) > 1:
            std = losses.std(0)
            ax.fill_between(iters, mean - std, mean + std, color=line.get_color(), alpha=0.25)
    ax.set_xlabel('iteration')
    ax.set_ylabel('pre-training loss (each row its own target)')
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def plot_protocols(rows: List[dict], out: str, title: str) -> None:
    """Mean top-1 per protocol (groups) and row (bars) with std error bars."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8, 4), dpi=120)
    width = 0.8 / len(rows)
    for i, row in enumerate(rows):
        means = [row['summary'][p]['mean'] for p in PROTOCOLS]
        stds = [row['summary'][p]['std'] or 0.0 for p in PROTOCOLS]
        ax.bar([j + (i - (len(rows) - 1) / 2) * width for j in range(len(PROTOCOLS))], means, width, yerr=stds,
               capsize=2, label=row['name'])
    ax.set_xticks(range(len(PROTOCOLS)), list(PROTOCOLS.values()), fontsize=8)
    ax.set_ylabel('top-1 (%)')
    ax.set_ylim(0, 100)
    ax.set_title(title)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--work-dir', default='work_dirs/small_study')
    parser.add_argument('--data-root', help='DIR/train/<class>/* and DIR/val/<class>/*; default: the '
                        'synthetic demo set, made in WORK_DIR/data')
    parser.add_argument('--train-per-class', type=int, default=256, help='synthetic set only')
    parser.add_argument('--val-per-class', type=int, default=64, help='synthetic set only')
    parser.add_argument('--img-size', type=int, default=32, help='crop size of pre-training and features')
    parser.add_argument('--patch-size', type=int, default=4)
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--rows', nargs='*', default=list(DEFAULT_ROWS), choices=list(DEFAULT_ROWS),
                        help='which of the default rows to run')
    parser.add_argument('--configs', nargs='*', default=[],
                        help='more pre-training configs to compare (rows named by their file)')
    parser.add_argument('--epochs', type=int, default=30, help='pre-training epochs')
    parser.add_argument('--batch-size', type=int, default=64, help='pre-training batch')
    parser.add_argument('--probe-epochs', type=int, default=300, help='linear probe epochs')
    parser.add_argument('--probe-batch', type=int, default=128, help='batch of the linear and attentive probes')
    parser.add_argument('--probe-lr', type=float, default=0.1 * 16384 / 256, help='LARS lr')
    parser.add_argument('--attentive-epochs', type=int, default=50)
    parser.add_argument('--attentive-lr', type=float, default=1e-3, help='AdamW lr')
    parser.add_argument('--attentive-wd', type=float, default=0.05, help='AdamW weight decay')
    parser.add_argument('--knn-k', type=int, default=20)
    parser.add_argument('--knn-t', type=float, default=0.07, help='k-NN temperature')
    parser.add_argument('--jobs', type=int, default=1,
                        help='pre-training runs at once (each with cpu_count / jobs threads)')
    args = parser.parse_args()
    if args.img_size % args.patch_size:
        parser.error(f'--img-size {args.img_size} is not a multiple of --patch-size {args.patch_size}.')
    if args.jobs < 1:
        parser.error(f'--jobs must be >= 1, got {args.jobs}.')
    if len(set(map(osp.abspath, args.configs))) != len(args.configs):
        parser.error(f'--configs repeats a config: {args.configs}.')
    if len(set(args.seeds)) != len(args.seeds):
        parser.error(f'--seeds repeats a seed: {args.seeds}.')
    return args


def main() -> None:
    args = parse_args()
    t0 = time.time()
    work_dir = osp.abspath(args.work_dir)
    os.makedirs(work_dir, exist_ok=True)
    if args.data_root is None:
        data_root = osp.join(work_dir, 'data')
        subprocess.run([sys.executable, osp.join(REPO, 'tools/misc/make_demo_data.py'), data_root,
                        '--train-per-class', str(args.train_per_class), '--val-per-class',
                        str(args.val_per_class)], check=True, stdout=subprocess.DEVNULL)
    else:
        data_root = osp.abspath(args.data_root)

    import saim_mm  # noqa: F401
    from mmengine.logging import MMLogger
    MMLogger.get_instance('small_study', log_level='WARNING')
    try:
        classes = check_image_folder(data_root)
    except ImageFolderError as err:
        sys.exit(f'small_study: {err}')
    train_images, train_y, train_classes = load_images(data_root, 'train', args.img_size)
    val_images, val_y, val_classes = load_images(data_root, 'val', args.img_size)
    assert train_classes == val_classes == classes, (train_classes, val_classes, classes)
    num_classes = len(classes)
    print(f'data: {data_root}: {num_classes} classes, {len(train_y)} train / {len(val_y)} val images, '
          f'{args.img_size} px, {args.patch_size} px patches', flush=True)

    rows = [DEFAULT_ROWS[name] for name in args.rows if name != RANDOM]
    rows += [Row(osp.splitext(osp.relpath(osp.abspath(c), REPO))[0], osp.abspath(c), {}, True) for c in args.configs]
    if RANDOM in args.rows:
        rows.append(DEFAULT_ROWS[RANDOM])
    work_dirs = {(row.name, seed): osp.join(work_dir, row.name.replace('/', '_').replace(' ', '_'), f'seed{seed}')
                 for row in rows for seed in args.seeds}
    configs = {(row.name, seed): row_config(row, data_root, args, seed, len(train_y), work_dirs[row.name, seed])
               for row in rows for seed in args.seeds}
    by_name = {row.name: row for row in rows}
    pretrained = pretrain_all({key: (cfg, work_dirs[key]) for key, cfg in configs.items() if by_name[key[0]].pretrain},
                              args.jobs, t0)
    results = []
    for row in rows:
        entry = dict(name=row.name, config=osp.relpath(row.config, REPO), model_options=row.model_options,
                     pretrained=row.pretrain, seeds=[])
        for seed in args.seeds:
            record = dict(seed=seed, **pretrained.get((row.name, seed), {}))
            t1 = time.time()
            model = build_encoder(configs[row.name, seed], record.pop('checkpoint', None), seed)
            tr_cls, tr_mean, tr_tok = features(model, train_images)
            va_cls, va_mean, va_tok = features(model, val_images)
            heads = model.backbone.arch_settings['num_heads']
            record.update(
                linear_cls=linear_probe(tr_cls, train_y, va_cls, val_y, num_classes, args, seed),
                linear_mean=linear_probe(tr_mean, train_y, va_mean, val_y, num_classes, args, seed),
                attentive=attentive_probe(tr_tok, train_y, va_tok, val_y, num_classes, heads, args, seed),
                knn_cls=knn_top1(tr_cls, train_y, va_cls, val_y, num_classes, args),
                knn_mean=knn_top1(tr_mean, train_y, va_mean, val_y, num_classes, args),
                probe_s=time.time() - t1)
            entry['seeds'].append(record)
            print(f'probed {row.name}, seed {seed}: ' + ', '.join(f'{title} {record[key]:.1f}'
                                                                  for key, title in PROTOCOLS.items()) +
                  f' [{time.time() - t0:.0f} s]', flush=True)
        keys = list(PROTOCOLS) + (['final_loss'] if row.pretrain else [])
        entry['summary'] = {key: mean_std([r[key] for r in entry['seeds']]) for key in keys}
        results.append(entry)

    source = 'synthetic shapes' if args.data_root is None else osp.basename(data_root.rstrip('/'))
    title = f'tiny ViT, {source}, {len(args.seeds)} seed(s)'
    plot_curves(results, osp.join(work_dir, 'loss_curves.png'), title)
    plot_protocols(results, osp.join(work_dir, 'protocols.png'), title)
    elapsed, cpu = time.time() - t0, cpu_seconds()
    with open(osp.join(work_dir, 'study.json'), 'w') as f:
        json.dump(dict(args=vars(args), data=dict(root=data_root, synthetic=args.data_root is None, classes=classes,
                                                  num_train=len(train_y), num_val=len(val_y)),
                       protocols=PROTOCOLS, rows=results, seconds=elapsed, cpu_seconds=cpu,
                       cpu_count=os.cpu_count(),
                       machine=machine()), f, indent=2)
    print(f'\ntop-1 (%), mean ± std over seeds {args.seeds}; {num_classes} classes, {len(train_y)} train / '
          f'{len(val_y)} val images; {elapsed / 60:.1f} min on {os.cpu_count()} CPU cores')
    head = ['row', 'final pre-train loss', *PROTOCOLS.values()]
    print(' | '.join(head))
    print(' | '.join('---' for _ in head))
    for r in results:
        print(' | '.join([r['name'], cell(r['summary'].get('final_loss'), 3),
                          *(cell(r['summary'][p]) for p in PROTOCOLS)]))
    print(f'\nwall time {elapsed:.0f} s (CPU time: pre-training {cpu["children"]:.0f} s, the rest '
          f'{cpu["main"]:.0f} s); wrote {osp.join(work_dir, "study.json")}, loss_curves.png and protocols.png')


if __name__ == '__main__':
    main()
