"""The command line of ``tools/analysis/small_study.py``: rows x seeds x protocols, then the report."""
import argparse
import os
import os.path as osp
import sys
import time
from typing import List, Optional

from .data import REPO, ImageFolderError, check_image_folder, load_images, make_synthetic
from .labels import check_budgets, few_label_protocols, label_budgets, run_few_label
from .protocols import PROTOCOLS, build_encoder, features, probe_config, run_protocols
from ..analysis.cost import cpu_seconds
from .report import plot_curves, plot_protocols, summarize, table, write_study
from .runs import (DEFAULT_ROWS, RANDOM, config_row, dependency_levels, final_checkpoint, pretrain_all, row_config,
                   with_teachers, work_dir_of)


def parse_args(argv: Optional[List[str]] = None, description: str = '') -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
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
    parser.add_argument('--teacher-from', nargs='*', default=[], metavar='ROW=SOURCE',
                        help="ROW's PretrainedTeacher (model.head.teacher) reads SOURCE's final checkpoint of the "
                        "same seed (e.g. 'configs/saim/family/demo/digpt.py=SAIM stochastic'; a row of --configs is named by its "
                        "file, with or without .py); SOURCE trains first")
    parser.add_argument('--epochs', type=int, default=30, help='pre-training epochs')
    parser.add_argument('--batch-size', type=int, default=64, help='pre-training batch')
    parser.add_argument('--probe-epochs', type=int, default=300,
                        help='linear probe epochs (train_cfg.max_epochs of linear_cpu.py; its schedule follows)')
    parser.add_argument('--probe-batch', type=int, default=128,
                        help='batch of the linear and attentive probes (train_dataloader.batch_size)')
    parser.add_argument('--probe-lr', type=float, default=0.1 * 16384 / 256, help='LARS lr of the linear probe')
    parser.add_argument('--attentive-epochs', type=int, default=50,
                        help='attentive probe epochs (train_cfg.max_epochs of attentive_cpu.py)')
    parser.add_argument('--attentive-lr', type=float, default=1e-3, help='AdamW lr of the attentive probe')
    parser.add_argument('--attentive-wd', type=float, default=0.05, help='AdamW weight decay of the attentive probe')
    parser.add_argument('--knn-k', type=int, default=20, help='k-NN neighbours (test_cfg.k of knn_cpu.py)')
    parser.add_argument('--knn-t', type=float, default=0.07, help='k-NN temperature (test_cfg.temperature)')
    parser.add_argument('--jobs', type=int, default=1,
                        help='pre-training runs at once (each with cpu_count / jobs threads)')
    parser.add_argument('--labels-per-class', type=int, nargs='+', default=[], metavar='K',
                        help='few-label columns: every protocol trained on K training images per class')
    parser.add_argument('--label-fraction', type=float, nargs='+', default=[], metavar='F',
                        help='few-label columns: every protocol trained on a fraction F in (0, 1] of each class')
    parser.add_argument('--label-draws', type=int, default=3, metavar='R',
                        help='stratified draws per few-label budget and seed (reproducible from seed and draw)')
    args = parser.parse_args(argv)
    if args.img_size % args.patch_size:
        parser.error(f'--img-size {args.img_size} is not a multiple of --patch-size {args.patch_size}.')
    if args.jobs < 1:
        parser.error(f'--jobs must be >= 1, got {args.jobs}.')
    if len(set(map(osp.abspath, args.configs))) != len(args.configs):
        parser.error(f'--configs repeats a config: {args.configs}.')
    if len(set(args.seeds)) != len(args.seeds):
        parser.error(f'--seeds repeats a seed: {args.seeds}.')
    if min(args.seeds) < 0:
        parser.error(f'--seeds must be >= 0, got {args.seeds}.')
    if args.label_draws < 1:
        parser.error(f'--label-draws must be >= 1, got {args.label_draws}.')
    try:
        args.budgets = label_budgets(args.labels_per_class, args.label_fraction)
    except ValueError as err:
        parser.error(str(err))
    return args


def probe_options(args: argparse.Namespace) -> dict:
    """The study's flags as :func:`.protocols.probe_config` options, by probe."""
    return dict(
        linear=dict(epochs=args.probe_epochs, batch=args.probe_batch, lr=args.probe_lr),
        attentive=dict(epochs=args.attentive_epochs, batch=args.probe_batch, lr=args.attentive_lr,
                       weight_decay=args.attentive_wd),
        knn=dict(k=args.knn_k, temperature=args.knn_t))


def main(argv: Optional[List[str]] = None, description: str = '') -> None:
    args = parse_args(argv, description)
    t0 = time.time()
    work_dir = osp.abspath(args.work_dir)
    os.makedirs(work_dir, exist_ok=True)
    if args.data_root is None:
        data_root = make_synthetic(osp.join(work_dir, 'data'), args.train_per_class, args.val_per_class)
    else:
        data_root = osp.abspath(args.data_root)

    from mmengine.logging import MMLogger

    from ..utils.data_roots import DataRootNotFoundError
    MMLogger.get_instance('small_study', log_level='WARNING')
    rows = [DEFAULT_ROWS[name] for name in args.rows if name != RANDOM] + [config_row(c) for c in args.configs]
    if RANDOM in args.rows:
        rows.append(DEFAULT_ROWS[RANDOM])
    try:
        rows = with_teachers(rows, args.teacher_from)
        levels = dependency_levels(rows)
    except ValueError as err:
        sys.exit(f'small_study: {err}')
    try:
        classes = check_image_folder(data_root)
    except (ImageFolderError, DataRootNotFoundError) as err:
        sys.exit(f'small_study: {err}')
    train_images, train_y, _ = load_images(data_root, 'train', args.img_size)
    budgets = args.budgets
    try:
        check_budgets(budgets, train_y, classes)
    except ValueError as err:
        sys.exit(f'small_study: {err}')
    few_label = few_label_protocols(budgets)
    val_images, val_y, _ = load_images(data_root, 'val', args.img_size)
    num_classes = len(classes)
    print(f'data: {data_root}: {num_classes} classes, {len(train_y)} train / {len(val_y)} val images, '
          f'{args.img_size} px, {args.patch_size} px patches', flush=True)

    by_name = {row.name: row for row in rows}

    def teacher_of(row, seed):
        source = by_name.get(row.teacher_from)
        return None if source is None else final_checkpoint(work_dir, source, seed, args.epochs)

    runs = {(row.name, seed): (row_config(row, data_root, args.img_size, args.patch_size, args.epochs,
                                          args.batch_size, seed, len(train_y), work_dir_of(work_dir, row, seed),
                                          teacher_of(row, seed)), work_dir_of(work_dir, row, seed))
            for row in rows for seed in args.seeds}
    pretrained = {}
    for level in levels:  # a row after the row it takes its teacher from
        names = {row.name for row in level if row.pretrain}
        pretrained.update(pretrain_all({key: run for key, run in runs.items() if key[0] in names}, args.jobs, t0))
    options = probe_options(args)
    results = []
    for row in rows:
        entry = dict(name=row.name, config=osp.relpath(row.config, REPO), model_options=row.model_options,
                     pretrained=row.pretrain, teacher_from=row.teacher_from, seeds=[])
        for seed in args.seeds:
            record = dict(seed=seed, **pretrained.get((row.name, seed), {}))
            t1 = time.time()
            encoder = build_encoder(runs[row.name, seed][0], record.pop('checkpoint', None), seed)
            train, val = features(encoder, train_images, train_y), features(encoder, val_images, val_y)
            settings = encoder.backbone.arch_settings

            def probe_on(subset, settings=settings) -> dict:  # the probes' schedules follow the subset's size
                configs = {probe: probe_config(probe, num_classes, settings['embed_dims'], settings['num_heads'],
                                               len(subset.labels), opts) for probe, opts in options.items()}
                return run_protocols(subset, val, num_classes, configs, seed)

            record.update(probe_on(train), probe_s=time.time() - t1)
            print(f'probed {row.name}, seed {seed}: ' + ', '.join(f'{p.title} {record[p.key]:.1f}'
                                                                  for p in PROTOCOLS) +
                  f' [{time.time() - t0:.0f} s]', flush=True)
            if budgets:
                t2 = time.time()
                record.update(run_few_label(train, budgets, args.label_draws, seed, probe_on),
                              few_label_s=time.time() - t2)
                print(f'few-label {row.name}, seed {seed}: ' + ', '.join(
                    f'{p.title} {sum(record[p.key]) / len(record[p.key]):.1f}' for p in few_label) +
                      f' [{time.time() - t0:.0f} s]', flush=True)
            entry['seeds'].append(record)
        results.append(summarize(entry, PROTOCOLS + tuple(few_label)))

    source = 'synthetic shapes' if args.data_root is None else osp.basename(data_root.rstrip('/'))
    title = f'tiny ViT, {source}, {len(args.seeds)} seed(s)'
    plot_curves(results, osp.join(work_dir, 'loss_curves.png'), title)
    plot_protocols(results, osp.join(work_dir, 'protocols.png'), title)
    figures = 'loss_curves.png and protocols.png'
    if budgets:
        plot_protocols(results, osp.join(work_dir, 'few_label.png'),
                       f'{title}, {args.label_draws} draw(s) each', few_label)
        figures = 'loss_curves.png, protocols.png and few_label.png'
    elapsed = time.time() - t0
    data = dict(root=data_root, synthetic=args.data_root is None, classes=classes, num_train=len(train_y),
                num_val=len(val_y),
                label_budgets=[dict(key=b.key, title=b.title, kind=b.kind, value=b.value) for b in budgets],
                label_draws=args.label_draws if budgets else 0)
    study_args = {k: v for k, v in vars(args).items() if k != 'budgets'}
    write_study(osp.join(work_dir, 'study.json'), study_args, data, results, elapsed, PROTOCOLS + tuple(few_label))
    spread = f'seeds {args.seeds}' + (f' (few-label: seeds x {args.label_draws} draws)' if budgets else '')
    print(f'\ntop-1 (%), mean ± std over {spread}; {num_classes} classes, {len(train_y)} train / '
          f'{len(val_y)} val images')
    print(table(results, PROTOCOLS + tuple(few_label)))
    cpu = cpu_seconds()
    print(f'\nwall time {elapsed:.0f} s (CPU time: pre-training {cpu["children"]:.0f} s, the rest '
          f'{cpu["main"]:.0f} s); wrote {osp.join(work_dir, "study.json")}, {figures}')
