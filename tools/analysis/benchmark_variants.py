"""What each SAIM variant costs: training-step time, peak memory and FLOPs against the paper's SAIM and MAE.

Rows (ViT-B/16 unless ``--arch``): the paper's SAIM (``configs/saim/vitb_800e.py``), every config given with
``--configs`` (e.g. ``configs/saim/variants/*.py``), the content stream alone (the causal encoder, no
decoder: the floor of any SAIM, since the encoder must see every patch) and mmpretrain's own ``MAE``
(``mmpretrain::_base_/models/mae_vit-base-p16.py`` unchanged: mask ratio 0.75, 512-wide 8-block decoder).

Each row is a full training step (forward, backward, AdamW step) on the same random images, timed in a
fresh process so that its peak memory is its own (CPU: the peak resident set size during the timed steps
minus the size before them; GPU: ``max_memory_allocated``). FLOPs are counted from the built model's sizes
(matrix products only, multiply-add = 2 FLOPs, attention scores and values counted in full without a
causal discount, a training step = 3 x forward).

    python tools/analysis/benchmark_variants.py --configs configs/saim/variants/partial_1_2.py \\
        configs/saim/variants/partial_1_6.py configs/saim/variants/narrow_512x8.py \\
        configs/saim/variants/narrow_512x8_partial_1_6.py configs/saim/variants/narrow_512x4_partial_1_6.py \\
        --batch-size 4 --threads 2 --out work_dirs/cost.json
"""
import argparse
import json
import os
import os.path as osp
import resource
import statistics
import time
from typing import List, Optional

import torch
from benchmark_pretrain import run_isolated  # the sibling tool (this folder is on sys.path when run)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PAPER = 'configs/saim/vitb_800e.py'
MAE = 'mmpretrain::_base_/models/mae_vit-base-p16.py'
FLOOR = 'content stream alone'


def build(row: str, arch: str, img_size: int):
    """The model of a row, initialised, in training mode."""
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
    model.init_weights()
    return model.train()


def loss_of(model, row: str, x: torch.Tensor) -> torch.Tensor:
    if row == FLOOR:  # the causal encoder over every patch, without the query stream
        order = model.sample_order(x.shape[0], x.device)
        return model.backbone(x, order=order)[0][-1].pow(2).mean()
    return model.loss(x, [])['loss'] if row == MAE else model.loss(x)['loss']


def forward_flops(model, row: str) -> float:
    """Matrix-product FLOPs of one image's forward pass."""

    def block(queries: int, keys: int, C: int, F: int, kv_dims: Optional[int] = None) -> float:
        kv = kv_dims or C
        return 2 * (queries * C * C + keys * kv * 2 * C + 2 * queries * keys * C + queries * C * C +
                    2 * queries * C * F)

    b = model.backbone
    C, F, M = b.embed_dims, b.arch_settings['feedforward_channels'], b.num_layers
    p = b.patch_embed.projection.kernel_size[0]
    N = b.patch_resolution[0] * b.patch_resolution[1]
    embed = 2 * N * 3 * p * p * C
    if row == MAE:
        L = int(N * (1 - b.mask_ratio)) + 1
        d = model.neck
        Cd = d.decoder_embed.out_features
        Fd = d.decoder_blocks[0].ffn.feedforward_channels
        decoder = 2 * (N + 1) * C * Cd + len(d.decoder_blocks) * block(N + 1, N + 1, Cd, Fd)
        return embed + M * block(L, L, C, F) + decoder + 2 * (N + 1) * Cd * d.decoder_pred.out_features
    encoder = M * block(N + 1, N + 1, C, F)
    if row == FLOOR:
        return embed + encoder
    d = model.neck
    K = d.num_predictions(N)
    if d.num_layers == 0:
        decoder = 0.0
    else:
        layer = d.layers[0] if d.layers is not None else b.layers[0]
        Cd, Fd = d.embed_dims, layer.ffn.feedforward_channels
        proj = 2 * N * C * Cd if d.narrow else 0  # the context projection of a narrow decoder
        decoder = d.num_layers * (block(K, N, Cd, Fd) + proj)
    head = d.predictor
    head_flops = sum(2 * K * m.in_features * m.out_features for m in head.modules() if isinstance(m, torch.nn.Linear))
    return embed + encoder + decoder + head_flops


def run_case(case: dict) -> dict:
    """Time one row; meant to run in a fresh process."""
    torch.set_num_threads(case['threads'])
    torch.manual_seed(0)
    model = build(case['row'], case['arch'], case['img_size'])
    x = torch.randn(case['batch'], 3, case['img_size'], case['img_size'])
    optim = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4, betas=(0.9, 0.95))
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    times = []
    for i in range(case['warmup'] + case['repeats']):
        t0 = time.perf_counter()
        optim.zero_grad(set_to_none=True)
        loss_of(model, case['row'], x).backward()
        optim.step()
        if i >= case['warmup']:
            times.append(time.perf_counter() - t0)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    step = statistics.median(times)
    return dict(case, step_s=step, step_s_all=times, peak_mem_mib=(peak - base) / 2**20,
                gflops_per_image=3 * forward_flops(model, case['row']) / 1e9)


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
        results.append(run_isolated(case, run_case))
        r = results[-1]
        print(f"{row}: {r['step_s']:.2f} s/step, peak {r['peak_mem_mib']:.0f} MiB, "
              f"{r['gflops_per_image']:.1f} GFLOPs/image", flush=True)
    print()
    print_table(results)
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(dict(threads=args.threads, torch=torch.__version__, results=results), f, indent=2)
        print(f'\nwrote {args.out}')


if __name__ == '__main__':
    main()
