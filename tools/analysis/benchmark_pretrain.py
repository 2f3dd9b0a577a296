"""Time SAIM pre-training steps: the production path against the paper's dense-mask formulation.

Two paths compute the same function with the same weights:

* ``production``: ``SAIM.loss`` — both streams in generation order with causal
  ``scaled_dot_product_attention`` (flash / memory-efficient kernels where the device has them);
* ``authors``: the formulation of the paper as its authors implemented it — tokens in raster position,
  additive -inf masks of shape (B, 1, N+1, N+1) and eager softmax attention
  (``saim_mm.testing.dense_mask``).

Each step is a full training step (forward, backward, AdamW step). Each case runs in a fresh process, so
that peak memory is its own: on a GPU ``torch.cuda.max_memory_allocated``; on the CPU the peak resident
set size during the timed steps minus the resident size before them (``--cpu-memory step``: minus the
resident size after the warm-up, i.e. what a step adds to the weights and optimiser states). Before timing,
the two paths' losses are compared on the same images and order.

FLOPs are counted from the architecture (matrix products only, multiply-add = 2 FLOPs; attention counted
as the full (N+1)^2 score and value products, i.e. without a causal discount, so both paths are measured
against the same work; a training step = 3 x the forward FLOPs). MFU = achieved FLOP/s over the device
peak (``--peak-tflops``, or a known value for H100/H200 bf16).

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
import multiprocessing as mp
import os
import os.path as osp
import resource
import statistics
import sys
import time
from typing import Callable, Dict, List, Optional

import torch

PATHS = ('production', 'authors')
# bf16 dense tensor-core peak (TFLOP/s) by device name; override with --peak-tflops
KNOWN_PEAK_TFLOPS = {'H100': 989.4, 'H200': 989.4, 'A100': 312.0}


def build_model(arch: str, img_size: int, patch_size: int = 16, with_cp: bool = False):
    """SAIM with the paper's decoder (depth = encoder depth, MLP head, k9 sigma1, norm-pix L2); ``with_cp``:
    activation checkpointing of both streams."""
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
    model.init_weights()
    return model


def step_flops(arch: str, img_size: int, patch_size: int = 16) -> float:
    """FLOPs of one training step per image (3 x forward; see the module docstring)."""
    from mmpretrain.models import VisionTransformer
    s = VisionTransformer.arch_zoo[arch]
    C, M, F = s['embed_dims'], s['num_layers'], s['feedforward_channels']
    N = (img_size // patch_size)**2
    L = N + 1
    embed = 2 * N * (3 * patch_size**2) * C
    encoder = M * (2 * L * C * 3 * C + 2 * 2 * L * L * C + 2 * L * C * C + 2 * 2 * L * C * F)
    # decoder: q from N queries, k/v from N context tokens, N x N attention, out-proj, MLP
    decoder = M * (2 * N * C * C + 2 * N * C * 2 * C + 2 * 2 * N * N * C + 2 * N * C * C + 2 * 2 * N * C * F)
    head = 2 * N * (C * 4 * C + 4 * C * 3 * patch_size**2)
    return 3.0 * (embed + encoder + decoder + head)


def make_step(model, path: str, x: torch.Tensor, dtype: str, device: str):
    """A closure running one training step of ``path``."""
    from saim_mm.testing import dense_mask_predictions
    optim = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4,
                              betas=(0.9, 0.95), weight_decay=0.05)
    amp = dtype == 'bf16'

    def loss_fn():
        if path == 'production':
            return model.loss(x)['loss']
        order = model.sample_order(x.shape[0], x.device)
        return model.head.loss(dense_mask_predictions(model, x, order), x)  # raster targets

    def step():
        optim.zero_grad(set_to_none=True)
        with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=amp):
            loss = loss_fn()
        loss.backward()
        optim.step()

    return step


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


def proc_status_kib(key: str) -> int:
    with open('/proc/self/status') as f:
        return int(next(line.split()[1] for line in f if line.startswith(key + ':')))


def reset_cpu_peak() -> int:
    """Return freed memory to the OS and restart the peak resident set (Linux ``clear_refs``) at the current
    one; returns the current resident set (bytes)."""
    import ctypes
    import gc
    gc.collect()
    ctypes.CDLL('libc.so.6').malloc_trim(0)
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')
    return proc_status_kib('VmRSS') * 1024


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
    step = make_step(model, case['path'], x, case['dtype'], device)
    sync = torch.cuda.synchronize if device == 'cuda' else (lambda: None)
    # memory is measured from here: weights, inputs and the optimiser's lazily created state count in
    step_only = device == 'cpu' and case.get('cpu_memory') == 'step'
    if device == 'cuda':
        torch.cuda.reset_peak_memory_stats()
    elif not step_only:
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    for _ in range(case['warmup']):
        step()
    sync()
    if step_only:  # from the steady state after the warm-up: weights and optimiser states exist
        base = reset_cpu_peak()
    times = []
    for _ in range(case['repeats']):
        sync()
        t0 = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t0)
    if device == 'cuda':
        peak = torch.cuda.max_memory_allocated()
    elif step_only:
        peak = proc_status_kib('VmHWM') * 1024
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    median = statistics.median(times)
    result = dict(case, step_s=median, step_s_all=times, images_per_s=case['batch'] / median,
                  peak_mem_mib=(peak - base) / 2**20 if device == 'cpu' else peak / 2**20)
    flops = step_flops(case['arch'], case['img_size']) * case['batch']
    result['tflops_per_s'] = flops / median / 1e12
    if case.get('peak_tflops'):
        result['mfu'] = result['tflops_per_s'] / case['peak_tflops']
    return result


def _child(case: dict, queue, target) -> None:
    try:
        queue.put(target(case))
    except BaseException as e:  # report, don't hang the parent
        queue.put(dict(case, error=f'{type(e).__name__}: {e}'))


def run_isolated(case: dict, target: Optional[Callable[[dict], dict]] = None) -> dict:
    """``target(case)`` (default :func:`run_case`) in a fresh process, so that its peak memory is its own."""
    ctx = mp.get_context('spawn')
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(case, queue, target or run_case))
    proc.start()
    result = queue.get()
    proc.join()
    if 'error' in result:
        raise RuntimeError(f'case {case}: {result["error"]}')
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
    env = dict(device=args.device, torch=torch.__version__, threads=args.threads or torch.get_num_threads(),
               gpu=torch.cuda.get_device_name() if args.device == 'cuda' else None,
               cpu=os.uname().machine, cpu_count=os.cpu_count())
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
                for path in args.paths:
                    case = dict(arch=arch, img_size=img, dtype=dtype, batch=batches[img], path=path,
                                device=args.device, threads=args.threads, warmup=args.warmup,
                                repeats=args.repeats, compile=args.compile, with_cp=args.with_cp,
                                cpu_memory=args.cpu_memory,
                                peak_tflops=peak_tflops(args))
                    group[path] = run_isolated(case)
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
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(dict(environment=env, loss_checks=checks, results=rows), f, indent=2)
        print(f'\nwrote {args.out}')


if __name__ == '__main__':
    sys.exit(main())
