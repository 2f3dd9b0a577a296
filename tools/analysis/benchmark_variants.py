"""What each SAIM variant costs: training-step time, peak memory and FLOPs against the paper's SAIM and MAE.

Rows (ViT-B/16 unless ``--arch``): the paper's SAIM (``configs/saim/vitb_800e.py``), every config given with
``--configs`` (e.g. ``configs/saim/variants/*.py``), the content stream alone (the causal encoder, no
decoder: the floor of any SAIM, since the encoder must see every patch) and mmpretrain's own ``MAE``
(``mmpretrain::_base_/models/mae_vit-base-p16.py`` unchanged: mask ratio 0.75, 512-wide 8-block decoder).

Each row is a full training step (forward, backward, AdamW step) on the same random images, timed in a
fresh process so that its peak memory is its own, and its FLOPs per image are counted by torch's
``FlopCounterMode`` over forward and backward (all by ``saim_mm.analysis.cost``). ``--out`` writes the
figures with the command, machine, versions and UTC date.

    python tools/analysis/benchmark_variants.py --configs configs/saim/variants/partial_1_2.py \\
        configs/saim/variants/partial_1_6.py configs/saim/variants/narrow_512x8.py \\
        configs/saim/variants/narrow_512x8_partial_1_6.py configs/saim/variants/narrow_512x4_partial_1_6.py \\
        --batch-size 4 --threads 2 --out work_dirs/cost.json
"""
import argparse
import os.path as osp
from typing import List

import torch

from saim_mm.analysis import write_results
from saim_mm.analysis.cost import run_isolated, time_training_step, training_flops_per_image

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PAPER = 'configs/saim/vitb_800e.py'
MAE = 'mmpretrain::_base_/models/mae_vit-base-p16.py'
FLOOR = 'content stream alone'


def build(row: str, arch: str, img_size: int, init: bool = True):
    """The model of a row in training mode; ``init``: run its initialisation."""
    import saim_mm  # noqa: F401
    from mmengine.config import Config
    from mmengine.logging import MMLogger
    from mmpretrain.registry import MODELS
    if not MMLogger.check_instance_created('benchmark_variants'):  # no per-parameter init log
        MMLogger.get_instance('benchmark_variants', log_level='WARNING')
    from mmengine.hub import get_config
    cfg = (get_config(MAE) if row == MAE else Config.fromfile(osp.join(REPO, PAPER if row == FLOOR else row))).model
    cfg.backbone.arch = arch
    cfg.backbone.img_size = img_size
    model = MODELS.build(cfg)
    if init:
        model.init_weights()
    return model.train()


def loss_of(model, row: str, x: torch.Tensor) -> torch.Tensor:
    if row == FLOOR:  # the causal encoder over every patch, without the query stream
        order = model.sample_order(x.shape[0], x.device)
        return model.backbone(x, order=order)[0][-1].pow(2).mean()
    return model.loss(x, [])['loss'] if row == MAE else model.loss(x)['loss']


def run_case(case: dict) -> dict:
    """Count and time one row; meant to run in a fresh process."""
    torch.set_num_threads(case['threads'])
    row, arch, size = case['row'], case['arch'], case['img_size']
    flops = training_flops_per_image(lambda: build(row, arch, size, init=False), lambda m, x: loss_of(m, row, x),
                                     (3, size, size))
    torch.manual_seed(0)
    model = build(row, arch, size)
    x = torch.randn(case['batch'], 3, size, size)
    timed = time_training_step(model, lambda: loss_of(model, row, x), 'cpu', case['warmup'], case['repeats'])
    return dict(case, **timed, gflops_per_image=flops / 1e9)


def print_table(rows: List[dict]) -> None:
    paper = next(r for r in rows if r['row'] == PAPER)
    floor = next(r for r in rows if r['row'] == FLOOR)
    mae = next(r for r in rows if r['row'] == MAE)
    head = ('row', 'GFLOPs/img', 'step s', 'peak MiB', 'time / SAIM', 'mem / SAIM', 'time / floor', 'time / MAE')
    print(' | '.join(head))
    print(' | '.join('---' for _ in head))
    for r in rows:
        name = osp.basename(r['row']) if r['row'] not in (FLOOR, MAE) else r['row']
        print(' | '.join(str(v) for v in (
            name, f"{r['gflops_per_image']:.1f}", f"{r['step_s']:.2f}", f"{r['peak_mem_mib']:.0f}",
            f"{r['step_s'] / paper['step_s']:.2f}", f"{r['peak_mem_mib'] / paper['peak_mem_mib']:.2f}",
            f"{r['step_s'] / floor['step_s']:.2f}", f"{r['step_s'] / mae['step_s']:.2f}")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--configs', nargs='*', default=[], help='variant pre-training configs (rows)')
    parser.add_argument('--arch', default='b', help="mmpretrain ViT arch of every row ('b' = ViT-B)")
    parser.add_argument('--img-size', type=int, default=224)
    parser.add_argument('--batch-size', type=int, default=4)
    parser.add_argument('--threads', type=int, default=torch.get_num_threads())
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--out', default=None, help='write all results to this JSON file')
    args = parser.parse_args()
    rows = [PAPER, *args.configs, FLOOR, MAE]
    results = []
    for row in rows:
        case = dict(row=row, arch=args.arch, img_size=args.img_size, batch=args.batch_size, threads=args.threads,
                    warmup=args.warmup, repeats=args.repeats)
        results.append(run_isolated(run_case, case))
        r = results[-1]
        print(f"{row}: {r['step_s']:.2f} s/step, peak {r['peak_mem_mib']:.0f} MiB, "
              f"{r['gflops_per_image']:.1f} GFLOPs/image", flush=True)
    print()
    print_table(results)
    if args.out:
        write_results(args.out, dict(threads=args.threads, results=results))
        print(f'\nwrote {args.out}')


if __name__ == '__main__':
    main()
