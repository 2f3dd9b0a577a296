"""Time SAIM pre-training steps: the production path against the paper's dense-mask formulation.

Two paths compute the same function with the same weights:

* ``production``: ``SAIM.loss`` — both streams in generation order with causal
  ``scaled_dot_product_attention`` (flash / memory-efficient kernels where the device has them);
* ``authors``: the formulation of the paper as its authors implemented it — tokens in raster position,
  additive -inf masks of shape (B, 1, N+1, N+1) and eager softmax attention
  (``saim_mm.testing.dense_mask``).

Each step is a full training step (forward, backward, AdamW step), timed in a fresh process so that
peak memory is its own (``saim_mm.analysis.cost``: on a GPU ``torch.cuda.max_memory_allocated``; on the
CPU the peak resident set size from before the warm-up, or with ``--cpu-memory step`` from after it,
minus the resident size there). Before timing, the two paths' losses are compared on the same images and
order.

FLOPs per image are counted by torch's ``FlopCounterMode`` over the production path's forward and
backward pass (``saim_mm.analysis.cost.training_flops_per_image``: multiply-add = 2 FLOPs, attention
counted as full squares without a causal discount, recomputation of ``--with-cp`` not counted), and both
paths are measured against that same work. MFU = achieved FLOP/s over the device peak (``--peak-tflops``,
or a known value for H100/H200 bf16). ``--out`` writes the figures with the command, machine, versions and
UTC date.

Examples::

    # CPU, 2 threads
    python tools/analysis/benchmark_pretrain.py --arch deit-small --img-size 224 448 --batch-size 8 \\
        --dtype fp32 --threads 2 --out work_dirs/bench_cpu.json
    # GPU
    python tools/analysis/benchmark_pretrain.py --device cuda --arch b --img-size 224 448 \\
        --batch-size 128 32 --dtype bf16 --out work_dirs/bench_gpu.json
"""
import argparse
import json
import sys
from typing import Dict, List

import torch

from saim_mm.analysis import machine, write_results
from saim_mm.analysis.cost import run_isolated, time_training_step, training_flops_per_image

PATHS = ('production', 'authors')
# bf16 dense tensor-core peak (TFLOP/s) by device name; override with --peak-tflops
KNOWN_PEAK_TFLOPS = {'H100': 989.4, 'H200': 989.4, 'A100': 312.0}


def build_model(arch: str, img_size: int, patch_size: int = 16, with_cp: bool = False, init: bool = True):
    """SAIM with the paper's decoder (depth = encoder depth, MLP head, k9 sigma1, norm-pix L2); ``with_cp``:
    activation checkpointing of both streams; ``init``: run its initialisation."""
    import saim_mm  # noqa: F401
    from mmengine.logging import MMLogger
    from mmpretrain.models import VisionTransformer
    from mmpretrain.registry import MODELS
    if not MMLogger.check_instance_created('benchmark_pretrain'):  # no per-parameter init log
        MMLogger.get_instance('benchmark_pretrain', log_level='WARNING')
    cfg = dict(
        type='SAIM',
        backbone=dict(type='SAIMViT', arch=arch, img_size=img_size, patch_size=patch_size, with_cp=with_cp),
        neck=dict(type='SAIMDecoder', num_layers=VisionTransformer.arch_zoo[arch]['num_layers'], with_cp=with_cp),
        head=dict(type='GaussianPixelLoss', patch_size=patch_size, kernel_size=9, sigma=1.0, norm_pix=True),
        init_cfg=[dict(type='Xavier', layer='Linear', distribution='uniform'),
                  dict(type='Constant', layer='LayerNorm', val=1.0, bias=0.0)])
    model = MODELS.build(cfg)
    if init:
        model.init_weights()
    return model


def step_flops(arch: str, img_size: int, patch_size: int = 16) -> float:
    """FLOPs of one training image (forward + backward of the production path), counted by FlopCounterMode."""
    return training_flops_per_image(lambda: build_model(arch, img_size, patch_size, init=False).train(),
                                    lambda model, x: model.loss(x)['loss'], (3, img_size, img_size))


def loss_closure(model, path: str, x: torch.Tensor):
    """A closure computing the loss of ``path`` on ``x``."""
    from saim_mm.testing import dense_mask_predictions

    def loss_fn():
        if path == 'production':
            return model.loss(x)['loss']
        order = model.sample_order(x.shape[0], x.device)
        return model.head.loss(dense_mask_predictions(model, x, order), x)  # raster targets

    return loss_fn


def check_same_loss(arch: str, img_size: int, batch: int, dtype: str, device: str) -> Dict[str, float]:
    """Both paths' losses for the same weights, images and order."""
    from saim_mm.testing import dense_mask_predictions
    torch.manual_seed(0)
    model = build_model(arch, img_size).to(device)
    x = torch.randn(batch, 3, img_size, img_size, device=device)
    order = model.sample_order(batch, x.device)
    with torch.no_grad(), torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=dtype == 'bf16'):
        fast = model.loss(x, order=order)['loss'].float().item()
        dense = model.head.loss(dense_mask_predictions(model, x, order), x).float().item()
    rel = abs(fast - dense) / abs(dense)
    tol = 1e-5 if dtype == 'fp32' else 2e-2
    if not rel <= tol:
        raise AssertionError(f'paths disagree: production loss {fast:.6f}, authors {dense:.6f} '
                             f'(relative {rel:.2e} > {tol:g})')
    return dict(loss_production=fast, loss_authors=dense, loss_rel_diff=rel)


def run_case(case: dict) -> dict:
    """Time one (arch, size, dtype, batch, path) case; meant to run in a fresh process."""
    device = case['device']
    if case.get('threads'):
        torch.set_num_threads(case['threads'])
    torch.manual_seed(0)
    model = build_model(case['arch'], case['img_size'], with_cp=case.get('with_cp', False)).to(device).train()
    if case['compile'] and case['path'] == 'production':
        model.loss = torch.compile(model.loss)
    x = torch.randn(case['batch'], 3, case['img_size'], case['img_size'], device=device)
    # on a GPU memory is counted from before the warm-up (weights and optimiser states count in); on the CPU
    # as --cpu-memory says
    memory_from = case.get('cpu_memory', 'run') if device == 'cpu' else 'run'
    timed = time_training_step(model, loss_closure(model, case['path'], x), device, case['warmup'],
                               case['repeats'], memory_from, torch.bfloat16 if case['dtype'] == 'bf16' else None)
    result = dict(case, **timed, images_per_s=case['batch'] / timed['step_s'])
    result['tflops_per_s'] = case['flops_per_image'] * case['batch'] / timed['step_s'] / 1e12
    if case.get('peak_tflops'):
        result['mfu'] = result['tflops_per_s'] / case['peak_tflops']
    return result


def peak_tflops(args) -> float:
    if args.peak_tflops:
        return args.peak_tflops
    if args.device == 'cuda' and args.dtype == 'bf16':
        name = torch.cuda.get_device_name()
        for key, value in KNOWN_PEAK_TFLOPS.items():
            if key in name:
                return value
    return 0.0


def print_table(rows: List[dict]) -> None:
    head = ('arch', 'img', 'dtype', 'batch', 'path', 'img/s', 'step ms', 'peak MiB', 'TFLOP/s', 'MFU',
            'speed x', 'mem x')
    print(' | '.join(head))
    print(' | '.join('---' for _ in head))
    for r in rows:
        mfu = f"{100 * r['mfu']:.1f}%" if 'mfu' in r else '-'
        print(' | '.join(str(v) for v in (
            r['arch'], r['img_size'], r['dtype'], r['batch'],
            r['path'] + ''.join(f' +{k}' for k in ('compile', 'with_cp') if r.get(k) and r['path'] == 'production'),
            f"{r['images_per_s']:.2f}",
            f"{1e3 * r['step_s']:.0f}", f"{r['peak_mem_mib']:.0f}", f"{r['tflops_per_s']:.3f}", mfu,
            f"{r['speedup']:.2f}", f"{r['mem_ratio']:.2f}")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--arch', nargs='+', default=['deit-small'],
                        help="mmpretrain ViT archs: 'deit-small' = ViT-S/16, 'b' = ViT-B/16")
    parser.add_argument('--img-size', type=int, nargs='+', default=[224, 448])
    parser.add_argument('--batch-size', type=int, nargs='+', default=[8],
                        help='one batch size, or one per --img-size')
    parser.add_argument('--dtype', nargs='+', choices=['fp32', 'bf16'], default=['fp32'])
    parser.add_argument('--device', choices=['cpu', 'cuda'], default='cpu')
    parser.add_argument('--threads', type=int, default=None, help='CPU threads (torch.set_num_threads)')
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--paths', nargs='+', choices=PATHS, default=list(PATHS))
    parser.add_argument('--compile', action='store_true', help='torch.compile the production loss')
    parser.add_argument('--with-cp', action='store_true',
                        help='activation checkpointing of both streams (with_cp=True) in the production path')
    parser.add_argument('--cpu-memory', choices=['run', 'step'], default='run',
                        help="CPU peak memory: 'run', the growth from before the warm-up (optimiser states "
                        "included); 'step', the growth of the timed steps over the state after the warm-up "
                        '(activations, gradients, temporaries)')
    parser.add_argument('--peak-tflops', type=float, default=None, help='device peak for MFU')
    parser.add_argument('--out', default=None, help='write all results to this JSON file')
    args = parser.parse_args()
    if len(args.batch_size) not in (1, len(args.img_size)):
        parser.error('--batch-size takes one value or one per --img-size')
    batches = dict(zip(args.img_size, args.batch_size * len(args.img_size)
                       if len(args.batch_size) == 1 else args.batch_size))
    if args.device == 'cuda' and not torch.cuda.is_available():
        parser.error('--device cuda but no GPU is visible')
    env = dict(device=args.device, threads=args.threads or torch.get_num_threads(), **machine(args.device))
    print('environment:', json.dumps(env))
    rows, checks = [], []
    for arch in args.arch:
        for img in args.img_size:
            for dtype in args.dtype:
                check = check_same_loss(arch, img, min(batches[img], 2), dtype, args.device)
                checks.append(dict(arch=arch, img_size=img, dtype=dtype, **check))
                print(f'[{arch} {img} {dtype}] same loss: production {check["loss_production"]:.6f}, '
                      f'authors {check["loss_authors"]:.6f} (rel diff {check["loss_rel_diff"]:.1e})',
                      flush=True)
                group = {}
                flops = step_flops(arch, img)
                for path in args.paths:
                    case = dict(arch=arch, img_size=img, dtype=dtype, batch=batches[img], path=path,
                                device=args.device, threads=args.threads, warmup=args.warmup,
                                repeats=args.repeats, compile=args.compile, with_cp=args.with_cp,
                                cpu_memory=args.cpu_memory, flops_per_image=flops,
                                peak_tflops=peak_tflops(args))
                    group[path] = run_isolated(run_case, case)
                    print(f"  {path}: {group[path]['images_per_s']:.2f} img/s, "
                          f"peak {group[path]['peak_mem_mib']:.0f} MiB", flush=True)
                ref = group.get('authors')
                for r in group.values():
                    r['speedup'] = r['images_per_s'] / ref['images_per_s'] if ref else 1.0
                    r['mem_ratio'] = r['peak_mem_mib'] / ref['peak_mem_mib'] if ref else 1.0
                    rows.append(r)
    print()
    print_table(rows)
    if args.out:
        write_results(args.out, dict(environment=env, loss_checks=checks, results=rows), args.device)
        print(f'\nwrote {args.out}')


if __name__ == '__main__':
    sys.exit(main())
