"""A small study that runs on the CPU: does stochastic-order pre-training help a linear probe?

A smoke version of the paper's claim (Table 1/3), not a substitute for ImageNet. Steps:

1. make a synthetic 4-class image set (tools/misc/make_demo_data.py: discs, squares, stripes, checkers
   in random colours and places);
2. pre-train the tiny SAIM ViT of configs/saim/demo_cpu.py on its training images (labels unused) twice,
   with stochastic and with raster generation order, everything else equal;
3. linear probe of three frozen encoders (stochastic, raster, and the same ViT at random init): the
   feature is the cls token of the last block after its norm (the recipe), and, as a second column, the
   mean of the patch tokens; BatchNorm without affine + Linear, trained with mmpretrain's LARS
   (momentum 0.9, weight decay 0, cosine schedule) on the cached features; the LARS lr defaults to 6.4,
   the recipe's 0.1 x batch / 256 at the 16384-image batch of ImageNet probing, because a few thousand
   images give too few steps for the small-batch value to converge; top-1 on the held-out images by
   mmpretrain's Accuracy;
4. print a table, write ``study.json`` and ``loss_curves.png`` (pre-training loss per iteration).

``--configs`` adds rows: any pre-training config (e.g. ``configs/saim/variants/demo/*.py``, or a full-size
one, slowly), pre-trained on the same images with the same epochs, batch and seed, and probed the same way.

    python tools/analysis/small_study.py --work-dir work_dirs/small_study
    python tools/analysis/small_study.py --configs configs/saim/variants/demo/partial_1_6.py
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import time

import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO = osp.join(REPO, 'configs/saim/demo_cpu.py')


def pretrain(config: str, options: list, data_root: str, work_dir: str, epochs: int, batch: int) -> str:
    """tools/train.py on a pre-training config (with ``options`` as --cfg-options); returns the final
    checkpoint path."""
    cmd = [sys.executable, osp.join(REPO, 'tools/train.py'), config, '--work-dir', work_dir,
           '--cfg-options', *options, f'train_dataloader.dataset.data_root={data_root}',
           f'train_cfg.max_epochs={epochs}', f'train_dataloader.batch_size={batch}',
           f'default_hooks.checkpoint.interval={epochs}', 'default_hooks.logger.interval=1',
           'randomness.seed=0']
    subprocess.run(cmd, check=True, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env=dict(os.environ, PYTHONPATH=REPO))
    return osp.join(work_dir, f'epoch_{epochs}.pth')


def loss_curve(work_dir: str) -> list:
    runs = sorted(d for d in os.listdir(work_dir) if osp.isdir(osp.join(work_dir, d, 'vis_data')))
    with open(osp.join(work_dir, runs[-1], 'vis_data', 'scalars.json')) as f:
        return [(r['iter'], r['loss']) for r in map(json.loads, f) if 'loss' in r]


@torch.no_grad()
def features(model, folder: str, classes: list) -> tuple:
    """(cls features, mean-patch features, labels) of every image under folder/<class>/."""
    from saim_mm.apis import extract_features
    cls_f, mean_f, labels = [], [], []
    for label, name in enumerate(classes):
        for fname in sorted(os.listdir(osp.join(folder, name))):
            cls, mean = extract_features(model, osp.join(folder, name, fname), pool=('cls', 'mean'))
            cls_f.append(cls[0])
            mean_f.append(mean[0])
            labels.append(label)
    return torch.stack(cls_f), torch.stack(mean_f), torch.tensor(labels)


def linear_probe(train_x, train_y, val_x, val_y, epochs: int, batch: int, lr: float) -> float:
    """BatchNorm (no affine) + Linear with LARS on cached features; top-1 (%) by mmpretrain."""
    from mmpretrain.engine.optimizers import LARS
    from mmpretrain.evaluation import Accuracy
    torch.manual_seed(0)
    num_classes = int(train_y.max()) + 1
    head = torch.nn.Sequential(torch.nn.BatchNorm1d(train_x.shape[1], affine=False),
                               torch.nn.Linear(train_x.shape[1], num_classes))
    torch.nn.init.trunc_normal_(head[1].weight, std=0.01)
    torch.nn.init.zeros_(head[1].bias)
    optim = LARS(head.parameters(), lr=lr, momentum=0.9, weight_decay=0.0)
    steps = epochs * ((len(train_x) + batch - 1) // batch)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(optim, steps)
    for _ in range(epochs):
        head.train()
        for idx in torch.randperm(len(train_x)).split(batch):
            loss = torch.nn.functional.cross_entropy(head(train_x[idx]), train_y[idx])
            optim.zero_grad()
            loss.backward()
            optim.step()
            sched.step()
    head.eval()
    with torch.no_grad():
        pred = head(val_x)
    return float(Accuracy.calculate(pred, val_y, topk=(1, ))[0][0])


def plot_curves(curves: dict, out: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for name, curve in curves.items():
        ax.plot([i for i, _ in curve], [v for _, v in curve], label=f'{name} order')
    ax.set_xlabel('iteration')
    ax.set_ylabel('pre-training loss (norm-pix L2)')
    ax.set_title('SAIM tiny ViT on synthetic shapes')
    ax.legend()
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--work-dir', default='work_dirs/small_study')
    parser.add_argument('--train-per-class', type=int, default=256)
    parser.add_argument('--val-per-class', type=int, default=64)
    parser.add_argument('--epochs', type=int, default=30, help='pre-training epochs')
    parser.add_argument('--batch-size', type=int, default=64, help='pre-training batch')
    parser.add_argument('--probe-epochs', type=int, default=300)
    parser.add_argument('--probe-batch', type=int, default=128)
    parser.add_argument('--probe-lr', type=float, default=0.1 * 16384 / 256, help='LARS lr')
    parser.add_argument('--configs', nargs='*', default=[],
                        help='more pre-training configs to compare (rows named by their file)')
    args = parser.parse_args()
    t0 = time.time()
    os.makedirs(args.work_dir, exist_ok=True)
    data = osp.join(args.work_dir, 'data')
    subprocess.run([sys.executable, osp.join(REPO, 'tools/misc/make_demo_data.py'), data,
                    '--train-per-class', str(args.train_per_class), '--val-per-class',
                    str(args.val_per_class)], check=True, stdout=subprocess.DEVNULL)

    import saim_mm  # noqa: F401
    from mmengine.config import Config
    from mmengine.logging import MMLogger
    from mmengine.runner import load_checkpoint
    from mmpretrain.registry import MODELS
    MMLogger.get_instance('small_study', log_level='WARNING')
    classes = sorted(os.listdir(osp.join(data, 'train')))
    # row name -> (config, --cfg-options)
    runs = {order: (DEMO, [f'model.order={order}']) for order in ('stochastic', 'raster')}
    runs.update({osp.splitext(osp.relpath(osp.abspath(c), REPO))[0]: (osp.abspath(c), []) for c in args.configs})
    encoders, curves, model_cfgs = {}, {}, {}
    for name, (config, options) in runs.items():
        wd = osp.join(args.work_dir, 'pretrain_' + name.replace('/', '_'))
        encoders[name] = pretrain(config, options, data, wd, args.epochs, args.batch_size)
        model_cfgs[name] = Config.fromfile(config).model
        curves[name] = loss_curve(wd)
        print(f'pre-trained ({name}): loss {curves[name][0][1]:.3f} -> {curves[name][-1][1]:.3f} '
              f'[{time.time() - t0:.0f} s]', flush=True)
    encoders['none (random init)'] = None
    model_cfgs['none (random init)'] = Config.fromfile(DEMO).model

    lr = args.probe_lr
    rows = []
    for name, ckpt in encoders.items():
        torch.manual_seed(0)
        model = MODELS.build(model_cfgs[name])
        model.init_weights()
        if ckpt is not None:
            load_checkpoint(model, ckpt, map_location='cpu', logger='silent')
        model.eval()
        tr_cls, tr_mean, tr_y = features(model, osp.join(data, 'train'), classes)
        va_cls, va_mean, va_y = features(model, osp.join(data, 'val'), classes)
        row = dict(pretraining=name,
                   top1_cls=linear_probe(tr_cls, tr_y, va_cls, va_y, args.probe_epochs, args.probe_batch, lr),
                   top1_mean=linear_probe(tr_mean, tr_y, va_mean, va_y, args.probe_epochs, args.probe_batch,
                                          lr),
                   final_loss=curves[name][-1][1] if name in curves else None)
        rows.append(row)
        print(f"probed {name}: cls {row['top1_cls']:.1f}%, mean-pool {row['top1_mean']:.1f}% "
              f'[{time.time() - t0:.0f} s]', flush=True)

    plot_curves(curves, osp.join(args.work_dir, 'loss_curves.png'))
    elapsed = time.time() - t0
    with open(osp.join(args.work_dir, 'study.json'), 'w') as f:
        json.dump(dict(args=vars(args), probe_lr=lr, rows=rows, curves=curves, seconds=elapsed,
                       cpu_count=os.cpu_count()), f, indent=2)
    n_tr, n_va = len(classes) * args.train_per_class, len(classes) * args.val_per_class
    print(f'\nlinear probe top-1 (%), {len(classes)} classes, {n_tr} train / {n_va} val images, '
          f'{elapsed / 60:.1f} min on {os.cpu_count()} CPU cores')
    print('pre-training | final pre-train loss | cls token | mean of patch tokens')
    print('--- | --- | --- | ---')
    for r in rows:
        loss = f"{r['final_loss']:.3f}" if r['final_loss'] is not None else '-'
        print(f"{r['pretraining']} | {loss} | {r['top1_cls']:.1f} | {r['top1_mean']:.1f}")
    print(f"\nwrote {osp.join(args.work_dir, 'study.json')} and loss_curves.png")


if __name__ == '__main__':
    main()
