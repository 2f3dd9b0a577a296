"""The GPU figures of saim_mm in one run of a few minutes: one JSON and a short text table.

    # on a machine with a CUDA GPU and torch, after tools/misc/build_device_wheels.sh (docs/gpu_check.md)
    bash tools/analysis/gpu_check.sh --wheels work_dirs/device_wheels --out-dir "$OUT"
    # the same logic on a CPU, tiny sizes (a rehearsal; its figures mean nothing)
    python tools/analysis/gpu_check.py --device cpu --tiny --out-dir work_dirs/gpu_check_cpu

Parts, in this order, each in its own process with its own time limit (``--budget-s`` caps their sum; a part
that would start with less than ``MIN_START_S`` left is skipped), each recorded with its status:

``install``        where saim_mm, mmpretrain, mmengine and mmcv are imported from, whether the requirements of
                   the installed wheels are met, and one pre-training step of the paper model (batch 8);
``bench_224``      ``benchmark_pretrain.py``: ViT-B/16 bf16 autocast, the production path against the
``bench_448``      authors' dense-mask formulation at 224 (batch 128) and 448 (batch 32): images/s, peak
                   memory, TFLOP/s, MFU against the GPU's bf16 peak (``PEAK_BF16_TFLOPS``);
``plan_memory``    ``plan_memory.py`` on ``configs/saim/vitb_800e.py`` at per-GPU batch 256 (a CPU tool);
``runner_fp16``    the mmengine Runner of ``configs/saim/vitb_800e.py`` (its model, AmpOptimWrapper in fp16
``runner_bf16``    then bf16, parameter schedulers and hooks) for 20 iterations at batch 256 on random
                   images: the loss of every iteration, images/s, peak memory against plan_memory's;
``sdpa``           which ``scaled_dot_product_attention`` kernel each attention call of the production path
                   runs (recorded per call), the profiler's attention ops and top kernels of one step, and a
                   step with each backend forced in turn;
``variants``       ``narrow_512x4_partial_1_6`` against the content stream alone (the floor) and the paper
                   model, ViT-B 224, batch 128;
``prefix``         AIM's prefix-causal content stream (``configs/saim/family/aim_vitb_800e.py``'s encoder, batch
                   128): FlexAttention's block mask against the boolean mask (outputs and gradients in
                   fp32), and bf16 step time with each and with the plain causal mask;
``checkpointing``  the ViT-L config without and with activation checkpointing (batch 64): time and memory;
``compile``        ``benchmark_pretrain.py --compile``: torch.compile against the eager figure of bench_224.

``benchmark_pretrain.py`` and ``plan_memory.py`` run by their command lines; the runner, SDPA, variant and
checkpointing parts are measured here with saim_mm's and mmengine's public APIs (the variant tool,
``benchmark_variants.py``, runs on the CPU only). Without CUDA (and without ``--device cpu``) the program
prints one line and exits with status 2. The exit status is 1 when a selected part did not finish.
"""
import argparse
import datetime
import gc
import json
import math
import os
import os.path as osp
import platform
import shutil
import signal
import site
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Callable, Dict, List, Optional

import torch

# gpu_check.sh names its wheels' folder here where the machine's Python has distutils only through the
# setuptools shim installed there (a .pth file, which folders on PYTHONPATH do not run); mmengine's Runner
# imports distutils
if os.environ.get('GPU_CHECK_SITE_DIR'):
    site.addsitedir(os.environ['GPU_CHECK_SITE_DIR'])

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOLS = osp.join(REPO, 'tools', 'analysis')
PAPER = 'configs/saim/vitb_800e.py'
LARGE = 'configs/saim/saim_vit-large-p16_8xb256-amp-coslr-800e_in1k.py'
CHEAP = 'configs/saim/variants/narrow_512x4_partial_1_6.py'
AIM = 'configs/saim/family/aim_vitb_800e.py'
# Dense bf16 tensor-core peak (TFLOP/s, NVIDIA data sheets, without sparsity) by device name; the first
# name contained in torch.cuda.get_device_name() wins, so the specific names come first.
PEAK_BF16_TFLOPS = (('H100 PCIe', 756.0), ('H100 NVL', 835.0), ('H200 NVL', 835.0), ('GH200', 989.4),
                    ('H200', 989.4), ('H100', 989.4), ('A100', 312.0), ('L40S', 362.0), ('B200', 2250.0))
# part: time limit (s). The sum exceeds the default budget: the later parts share what is left.
PARTS = {
    'install': 60,
    'bench_224': 110,
    'bench_448': 110,
    'plan_memory': 60,
    'runner_fp16': 90,
    'runner_bf16': 90,
    'sdpa': 60,
    'variants': 70,
    'prefix': 60,
    'checkpointing': 70,
    'compile': 150,
}
MIN_START_S = 15
# The targets of issue 24: (name, what, comparison, threshold).
TARGETS = (
    ('speed_224', 'production / authors images/s at 224', '>=', 1.5),
    ('speed_448', 'production / authors images/s at 448', '>=', 2.5),
    ('memory_224', 'production / authors peak memory at 224', '<=', 0.6),
    ('memory_448', 'production / authors peak memory at 448', '<=', 0.6),
    ('mfu_224', 'production MFU at 224 (bf16 peak)', '>=', 0.45),
    ('plan_fp16', '|runner fp16 peak / plan_memory peak - 1| at the runner batch', '<=', 0.15),
    ('plan_bf16', '|runner bf16 peak / plan_memory peak - 1| at the runner batch', '<=', 0.15),
    ('finite_fp16', 'fp16 iterations with a finite loss / iterations', '>=', 1.0),
    ('finite_bf16', 'bf16 iterations with a finite loss / iterations', '>=', 1.0),
)


def sizes(tiny: bool) -> dict:
    """Image sizes, batches and step counts of every part; ``tiny``: a CPU rehearsal of the logic."""
    if tiny:
        return dict(img=32, img_large=48, batch_224=2, batch_448=2, runner_batch=2, runner_iters=2,
                    runner_skip=0, plan_batch=2, sdpa_batch=2, variants_batch=2, prefix_batch=2, cp_batch=2,
                    install_batch=2, warmup=1, repeats=1, workers=0)
    return dict(img=224, img_large=448, batch_224=128, batch_448=32, runner_batch=256, runner_iters=20,
                runner_skip=5, plan_batch=256, sdpa_batch=128, variants_batch=128, prefix_batch=128, cp_batch=64,
                install_batch=8, warmup=3, repeats=10, workers=min(8, os.cpu_count() or 1))


def peak_tflops(device_name: str) -> Optional[float]:
    for key, value in PEAK_BF16_TFLOPS:
        if key in device_name:
            return value
    return None


# ---------------------------------------------------------------------------------------------- helpers

def tiny_config(src: str, work_dir: str, layers: int = 12) -> str:
    """A config file inheriting ``src`` with a 64-wide encoder of ``layers`` blocks on 32x32 images (the CPU
    rehearsal); 12 blocks keep the narrow variant's reading blocks 3/6/9/12, 24 the ViT-L decoder depth."""
    path = osp.join(work_dir, 'tiny_' + osp.basename(src))
    with open(path, 'w') as f:
        f.write(f"_base_ = [{osp.join(REPO, src)!r}]\n"
                f"model = dict(backbone=dict(arch=dict(_delete_=True, embed_dims=64, num_layers={layers}, num_heads=2, "
                "feedforward_channels=128), img_size=32))\n")
    return path


def load_config(path: str):
    from mmengine.config import Config
    return Config.fromfile(path)


def build_model(cfg, device: str, **backbone_neck):
    """The config's model, initialised, in training mode on ``device``; ``backbone_neck``: ``with_cp``."""
    import saim_mm  # noqa: F401
    from mmengine.logging import MMLogger
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS
    if not MMLogger.check_instance_created('gpu_check'):  # no per-parameter initialisation log
        MMLogger.get_instance('gpu_check', log_level='WARNING')
    model_cfg = cfg.model.copy()
    if backbone_neck:
        model_cfg.backbone = dict(model_cfg.backbone, **backbone_neck)
        model_cfg.neck = dict(model_cfg.neck, **backbone_neck)
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmpretrain')):
        model = MODELS.build(model_cfg)
    model.to(device).init_weights()  # on the GPU: seconds instead of a minute for ViT-L on the CPU
    return model.to(device).train()


def image_size(model) -> int:
    return model.backbone.patch_resolution[0] * model.backbone.patch_embed.projection.kernel_size[0]


def amp_dtype(cfg) -> torch.dtype:
    """The autocast dtype of the config's AmpOptimWrapper (its default: fp16)."""
    return getattr(torch, cfg.optim_wrapper.get('dtype') or 'float16')


def saim_loss(model, x: torch.Tensor) -> torch.Tensor:
    return model.loss(x)['loss']


def content_stream_loss(model, x: torch.Tensor) -> torch.Tensor:
    """The causal encoder over every patch in a generation order, without the query stream: the floor of
    any SAIM variant (the encoder must see every patch)."""
    order = model.sample_order(x.shape[0], x.device)
    hidden_states, _ = model.backbone(x, order=order)
    return hidden_states[-1].float().pow(2).mean()


def free_device_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def sync(device: str) -> None:
    if device == 'cuda':
        torch.cuda.synchronize()


def time_steps(model, loss_fn: Callable, batch: int, device: str, dtype: Optional[torch.dtype], warmup: int,
               repeats: int) -> dict:
    """Training steps (forward, backward, AdamW step) on random images under ``dtype`` autocast.

    Returns:
        dict: ``step_s`` (median), ``step_s_all``, ``images_per_s``, ``peak_mem_mib`` (CUDA's
        ``max_memory_allocated`` from before the first step: weights, inputs, optimiser states, activations;
        None on the CPU) and the last ``loss``.
    """
    img = image_size(model)
    x = torch.randn(batch, 3, img, img, device=device)
    optim = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4, betas=(0.9, 0.95),
                              weight_decay=0.05)
    if device == 'cuda':
        torch.cuda.reset_peak_memory_stats()
    times, loss = [], None
    for i in range(warmup + repeats):
        sync(device)
        t0 = time.perf_counter()
        optim.zero_grad(set_to_none=True)
        with torch.autocast(device_type=device, dtype=dtype or torch.float32, enabled=dtype is not None):
            loss = loss_fn(model, x)
        loss.backward()
        optim.step()
        sync(device)
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    step = statistics.median(times)
    peak = torch.cuda.max_memory_allocated() / 2**20 if device == 'cuda' else None
    del optim, x
    return dict(batch=batch, img_size=img, step_s=step, step_s_all=times, images_per_s=batch / step,
                peak_mem_mib=peak, loss=float(loss.detach()))


# ------------------------------------------------------------------------------------------ inner parts

def part_install(args, s: dict) -> dict:
    """Where the stack is imported from, whether the installed wheels' requirements are met, one step."""
    from importlib import metadata

    import mmcv
    import mmengine
    import mmpretrain
    import numpy
    import saim_mm
    from packaging.requirements import Requirement
    modules = {m.__name__: dict(version=m.__version__, file=m.__file__)
               for m in (saim_mm, mmpretrain, mmengine, mmcv, torch, numpy)}
    try:
        import mmcv._ext  # noqa: F401
        mmcv_ops = 'compiled'
    except ImportError:
        mmcv_ops = 'none (pure-Python build)'
    # requirements of every distribution installed next to saim_mm (the wheels' target); saim_mm's own
    # requirements are the project's CPU set-up (torch, numpy<2, mmdet, mmseg) and are not checked here
    site = osp.dirname(osp.dirname(saim_mm.__file__))
    satisfied_by = {'opencv-python': 'opencv-python-headless'}
    problems, checked = [], []
    for dist in metadata.distributions(path=[site]):
        name = dist.metadata['Name']
        checked.append(f'{name}=={dist.version}')
        if name.replace('_', '-').lower() == 'saim-mm':
            continue
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is not None and not req.marker.evaluate(dict(extra='')):
                continue
            found = None
            for candidate in (req.name, satisfied_by.get(req.name.lower())):
                if candidate:
                    try:
                        found = metadata.version(candidate)
                        break
                    except metadata.PackageNotFoundError:
                        pass
            if found is None:
                problems.append(f'{name} needs {req}: not installed')
            elif req.specifier and not req.specifier.contains(found, prereleases=True):
                problems.append(f'{name} needs {req}: found {found}')
    if problems:
        raise RuntimeError('unmet requirements: ' + '; '.join(problems))
    cfg = load_config(args.config)
    torch.manual_seed(0)
    model = build_model(cfg, args.device)
    step = time_steps(model, saim_loss, s['install_batch'], args.device, torch.bfloat16, 0, 1)
    if not math.isfinite(step['loss']):
        raise RuntimeError(f'the pre-training step gave a non-finite loss {step["loss"]}')
    return dict(modules=modules, mmcv_ops=mmcv_ops, site=site, distributions=sorted(checked), step=step)


def part_runner(args, s: dict) -> dict:
    """The config's Runner for ``runner_iters`` iterations on random images at ``runner_batch``."""
    import saim_mm  # noqa: F401
    from mmengine.hooks import Hook
    from mmengine.runner import Runner
    from mmpretrain.structures import DataSample

    class RandomImages(torch.utils.data.Dataset):
        """Random uint8 images (3, size, size) packed as the config's pipeline packs them."""

        def __init__(self, num: int, size: int) -> None:
            self.num, self.size = num, size

        def __len__(self) -> int:
            return self.num

        def __getitem__(self, index: int) -> dict:
            gen = torch.Generator().manual_seed(index)
            img = torch.randint(0, 256, (3, self.size, self.size), dtype=torch.uint8, generator=gen)
            return dict(inputs=img, data_samples=DataSample())

    class Measure(Hook):
        """Loss, compute time and wall time of every iteration; the run's peak memory."""
        priority = 'VERY_LOW'

        def __init__(self) -> None:
            self.losses, self.compute_s, self.wall_s = [], [], []
            self.t_iter = self.t_end = None

        def before_train(self, runner) -> None:
            if args.device == 'cuda':
                torch.cuda.reset_peak_memory_stats()
            self.t_end = time.perf_counter()

        def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
            sync(args.device)
            self.t_iter = time.perf_counter()

        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
            sync(args.device)
            now = time.perf_counter()
            self.compute_s.append(now - self.t_iter)
            self.wall_s.append(now - self.t_end)
            self.t_end = now
            self.losses.append(float(outputs['loss'].detach()))

    cfg = load_config(args.config)
    size = cfg.model.backbone.img_size
    wrapper = dict(cfg.optim_wrapper)
    if args.device == 'cuda':
        wrapper.update(type='AmpOptimWrapper', dtype=args.amp)
    elif args.amp == 'bfloat16':  # mmengine's AmpOptimWrapper refuses the CPU
        wrapper.update(type='CPUAmpOptimWrapper', dtype='bfloat16')
    else:  # no fp16 autocast on the CPU: the rehearsal runs this part in fp32
        wrapper.pop('dtype', None)
        wrapper.update(type='OptimWrapper')
    cfg.optim_wrapper = wrapper
    cfg.work_dir = args.work_dir
    # the loop and hooks for 20 iterations: no checkpoint (the weights are not what is measured), a log line
    # every 5 iterations, only the local visual backend
    cfg.train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=1)
    cfg.default_hooks.checkpoint = None
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=5)
    cfg.visualizer = dict(type='UniversalVisualizer', vis_backends=[dict(type='LocalVisBackend')])
    loader = dict(cfg.train_dataloader, batch_size=s['runner_batch'], num_workers=s['workers'],
                  persistent_workers=False,
                  dataset=RandomImages(s['runner_batch'] * s['runner_iters'], size))
    if not s['workers']:
        loader.pop('pin_memory', None)
    measure = Measure()
    # Runner.from_cfg's arguments, with the random-image data set given as an object (a config holds
    # only what it can write out as text)
    runner = Runner(
        model=cfg.model, work_dir=cfg.work_dir, train_dataloader=loader, train_cfg=cfg.train_cfg,
        optim_wrapper=cfg.optim_wrapper, param_scheduler=cfg.get('param_scheduler'),
        default_hooks=cfg.get('default_hooks'), custom_hooks=list(cfg.get('custom_hooks') or []) + [measure],
        resume=False, load_from=None, launcher='none', env_cfg=cfg.get('env_cfg'),
        log_processor=cfg.get('log_processor'), log_level='INFO', visualizer=cfg.visualizer,
        default_scope=cfg.get('default_scope', 'mmpretrain'), randomness=cfg.get('randomness'), cfg=cfg)
    error = None
    try:
        runner.train()
    except Exception as e:  # a non-finite loss stops the run (NonFiniteLossHook): recorded, not hidden
        error = f'{type(e).__name__}: {e}'
    peak = torch.cuda.max_memory_allocated() if args.device == 'cuda' else None
    skip = s['runner_skip']
    timed = measure.compute_s[skip:] or measure.compute_s
    wall = measure.wall_s[skip:] or measure.wall_s
    finite = sum(math.isfinite(v) for v in measure.losses)
    scaler = getattr(runner.optim_wrapper, 'loss_scaler', None)
    out = dict(config=args.config, optim_wrapper=wrapper['type'], dtype=wrapper.get('dtype', 'float32'),
               batch=s['runner_batch'], img_size=size, iterations=s['runner_iters'], done=len(measure.losses),
               losses=measure.losses, finite=finite, all_finite=finite == s['runner_iters'],
               compute_s=measure.compute_s, wall_s=measure.wall_s, timed_from_iteration=skip,
               images_per_s=s['runner_batch'] / statistics.median(timed) if timed else None,
               images_per_s_wall=s['runner_batch'] / statistics.median(wall) if wall else None,
               peak_mem_bytes=peak, loss_scale=float(scaler.get_scale()) if scaler is not None else None,
               error=error)
    if error:
        raise RuntimeError(json.dumps(out))
    return out


# kernels of scaled_dot_product_attention, by the aten op that runs them
SDPA_OPS = {
    '_scaled_dot_product_flash_attention': 'flash',
    '_flash_attention_forward': 'flash',
    '_scaled_dot_product_flash_attention_for_cpu': 'flash (cpu)',
    '_scaled_dot_product_efficient_attention': 'efficient',
    '_efficient_attention_forward': 'efficient',
    '_scaled_dot_product_cudnn_attention': 'cudnn',
    '_cudnn_attention_forward': 'cudnn',
    '_scaled_dot_product_fused_attention_overrideable': 'overrideable',
}


def record_sdpa_calls(model, x: torch.Tensor, dtype: torch.dtype, device: str) -> List[dict]:
    """Every ``scaled_dot_product_attention`` call of one forward of the production loss and the kernel
    it ran: the aten op it dispatched to (none of ``SDPA_OPS``: the math fallback, matmul and softmax)."""
    import torch.nn.functional as F
    from torch.overrides import TorchFunctionMode
    from torch.utils._python_dispatch import TorchDispatchMode

    class OpNames(TorchDispatchMode):

        def __init__(self) -> None:
            super().__init__()
            self.names = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.names.append(func.overloadpacket.__name__)
            return func(*args, **(kwargs or {}))

    class Calls(TorchFunctionMode):

        def __init__(self) -> None:
            super().__init__()
            self.calls = []

        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            if func is not F.scaled_dot_product_attention:
                return func(*args, **kwargs)
            with OpNames() as ops:
                out = func(*args, **kwargs)
            fused = [SDPA_OPS[n] for n in ops.names if n in SDPA_OPS]
            mask = kwargs.get('attn_mask', args[3] if len(args) > 3 else None)
            self.calls.append(dict(
                query=list(args[0].shape), key=list(args[1].shape), dtype=str(args[0].dtype).replace('torch.', ''),
                is_causal=bool(kwargs.get('is_causal', args[5] if len(args) > 5 else False)),
                mask=None if mask is None else type(mask).__name__, backend=fused[0] if fused else 'math'))
            return out

    with torch.no_grad(), torch.autocast(device_type=device, dtype=dtype), Calls() as rec:
        model.loss(x)
    return rec.calls


def profile_step(model, x: torch.Tensor, dtype: torch.dtype, device: str, top: int = 15) -> dict:
    """One training step under the profiler: its attention ops (forward and backward) and top kernels."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == 'cuda' else [])
    with profile(activities=activities) as prof:
        with torch.autocast(device_type=device, dtype=dtype):
            loss = model.loss(x)['loss']
        loss.backward()
        sync(device)
    events = prof.key_averages()
    attention = {e.key: e.count for e in events
                 if any(k in e.key for k in ('scaled_dot_product', 'flash_attention', 'efficient_attention',
                                             'cudnn_attention'))}

    def self_time(e) -> float:  # microseconds
        if device == 'cuda':
            return getattr(e, 'self_device_time_total', None) or getattr(e, 'self_cuda_time_total', 0.0)
        return e.self_cpu_time_total

    kernels = [e for e in events if (e.device_type == DeviceType.CUDA) == (device == 'cuda')]
    total = sum(self_time(e) for e in kernels) or 1.0
    ranked = sorted(kernels, key=self_time, reverse=True)[:top]
    return dict(attention_ops=attention, total_ms=total / 1e3, what='CUDA kernels' if device == 'cuda' else
                'CPU ops', top=[dict(name=e.key[:160], calls=e.count, ms=self_time(e) / 1e3,
                                     share=self_time(e) / total) for e in ranked])


def part_sdpa(args, s: dict) -> dict:
    """SDPA kernel per attention call, the profiler's view of one step, and each backend forced."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    cfg = load_config(args.config)
    torch.manual_seed(0)
    model = build_model(cfg, args.device)
    dtype = torch.bfloat16
    img = image_size(model)
    x = torch.randn(s['sdpa_batch'], 3, img, img, device=args.device)
    time_steps(model, saim_loss, s['sdpa_batch'], args.device, dtype, 1, 1)  # warm-up (kernels, allocator)
    calls = record_sdpa_calls(model, x, dtype, args.device)
    summary: Dict[str, Dict[str, int]] = {}
    for c in calls:
        kind = f"q{c['query'][2:]} k{c['key'][2:]} causal={c['is_causal']} mask={c['mask']}"
        summary.setdefault(kind, {})
        summary[kind][c['backend']] = summary[kind].get(c['backend'], 0) + 1
    prof = profile_step(model, x, dtype, args.device)
    forced = {}
    for name in ('FLASH_ATTENTION', 'EFFICIENT_ATTENTION', 'CUDNN_ATTENTION', 'MATH'):
        backend = getattr(SDPBackend, name, None)
        if backend is None:
            forced[name.lower()] = dict(status='not in this torch')
            continue
        try:
            with sdpa_kernel([backend]):
                r = time_steps(model, saim_loss, s['sdpa_batch'], args.device, dtype, 1, 2)
            forced[name.lower()] = dict(status='ok', step_s=r['step_s'], images_per_s=r['images_per_s'],
                                        peak_mem_mib=r['peak_mem_mib'])
        except RuntimeError as e:
            forced[name.lower()] = dict(status='unavailable', error=str(e).strip().splitlines()[0][:300])
        free_device_memory()
    backends = sorted({c['backend'] for c in calls})
    return dict(config=args.config, batch=s['sdpa_batch'], img_size=img, calls=calls, by_call_kind=summary,
                backends=backends, profile=prof, forced=forced)


def part_variants(args, s: dict) -> dict:
    """The cheapest variant, the paper model and the content stream alone (the floor)."""
    rows = []
    for name, config, loss_fn in (('paper (vitb_800e)', args.config, saim_loss),
                                  ('narrow_512x4_partial_1_6', args.config2, saim_loss),
                                  ('content stream alone', args.config, content_stream_loss)):
        torch.manual_seed(0)
        model = build_model(load_config(config), args.device)
        r = time_steps(model, loss_fn, s['variants_batch'], args.device, torch.bfloat16, s['warmup'],
                       s['repeats'])
        rows.append(dict(r, row=name, config=config))
        del model
        free_device_memory()
    floor, paper = rows[2], rows[0]
    for r in rows:
        r['time_over_floor'] = r['step_s'] / floor['step_s']
        r['time_over_paper'] = r['step_s'] / paper['step_s']
        if r['peak_mem_mib'] is not None:
            r['mem_over_floor'] = r['peak_mem_mib'] / floor['peak_mem_mib']
    return dict(rows=rows)


def part_prefix(args, s: dict) -> dict:
    """The prefix-causal content stream: block mask against boolean mask, and its cost against causal.

    Only the encoder of the AIM-style config is built (its 406 M-parameter head plays no part in the
    attention). One batch of random images in raster order with prefix lengths drawn from [1, N - 1]; on a
    CPU FlexAttention has no backward, so the block-mask path falls back to the boolean mask there and the
    rehearsal compares a path with itself.
    """
    import saim_mm  # noqa: F401
    from mmpretrain.registry import MODELS
    cfg = load_config(args.config)
    torch.manual_seed(0)
    encoder = MODELS.build(cfg.model.backbone)
    encoder.init_weights()
    encoder.to(args.device)
    encoder.train()
    model = torch.nn.ModuleDict(dict(backbone=encoder))  # what time_steps and image_size read
    h, w = encoder.patch_resolution
    batch, n = s['prefix_batch'], h * w
    generator = torch.Generator().manual_seed(0)
    order = torch.arange(n, device=args.device).expand(batch, -1)
    prefix_len = torch.randint(1, n, (batch, ), generator=generator).to(args.device)

    def set_mask(block_sparse: bool) -> None:
        for layer in encoder.layers:
            layer.attn.block_sparse = block_sparse

    def prefix_loss(m, x: torch.Tensor) -> torch.Tensor:
        return m.backbone(x, order=order, prefix_len=prefix_len)[0][-1].float().pow(2).mean()

    def causal_loss(m, x: torch.Tensor) -> torch.Tensor:
        return m.backbone(x, order=order)[0][-1].float().pow(2).mean()

    x = torch.randn(batch, 3, image_size(model), image_size(model), generator=generator).to(args.device)
    outs = {}
    for block_sparse in (True, False):
        set_mask(block_sparse)
        encoder.zero_grad(set_to_none=True)
        loss = prefix_loss(model, x)
        loss.backward()
        outs[block_sparse] = (encoder(x, order=order, prefix_len=prefix_len)[0][-1].detach(),
                              {k: p.grad.detach().clone() for k, p in encoder.named_parameters()
                               if p.grad is not None})
    (out_b, grad_b), (out_d, grad_d) = outs[True], outs[False]
    max_grad_err = max(((grad_b[k] - grad_d[k]).norm() / grad_d[k].norm().clamp_min(1e-30)).item() for k in grad_d)
    encoder.zero_grad(set_to_none=True)
    del outs, x
    rows = {}
    for name, block_sparse, loss_fn in (('prefix, block mask', True, prefix_loss),
                                        ('prefix, boolean mask', False, prefix_loss),
                                        ('causal', False, causal_loss)):
        set_mask(block_sparse)
        rows[name] = time_steps(model, loss_fn, batch, args.device, torch.bfloat16, s['warmup'], s['repeats'])
        free_device_memory()
    causal = rows['causal']['step_s']
    for r in rows.values():
        r['time_over_causal'] = r['step_s'] / causal
    return dict(config=args.config, prefix_len_range=[1, n - 1], batch=batch,
                output_rel_err=((out_b - out_d).norm() / out_d.norm()).item(), grad_max_rel_err=max_grad_err,
                rows=rows)


def part_checkpointing(args, s: dict) -> dict:
    """The ViT-L config without and with activation checkpointing of both streams, same batch."""
    cfg = load_config(args.config)
    rows = {}
    for with_cp in (False, True):
        torch.manual_seed(0)
        model = build_model(cfg, args.device, with_cp=with_cp)
        rows['with_cp' if with_cp else 'no_cp'] = time_steps(model, saim_loss, s['cp_batch'], args.device,
                                                            amp_dtype(cfg), s['warmup'], s['repeats'])
        del model
        free_device_memory()
    out = dict(config=args.config, dtype=str(amp_dtype(cfg)).replace('torch.', ''), **rows,
               time_ratio=rows['with_cp']['step_s'] / rows['no_cp']['step_s'])
    if rows['no_cp']['peak_mem_mib']:
        out['mem_ratio'] = rows['with_cp']['peak_mem_mib'] / rows['no_cp']['peak_mem_mib']
    return out


INNER = dict(install=part_install, runner=part_runner, sdpa=part_sdpa, variants=part_variants,
             prefix=part_prefix, checkpointing=part_checkpointing)


# ----------------------------------------------------------------------------------------- orchestration

def run_part(name: str, argv: List[str], limit: float, log_path: str, env: dict) -> dict:
    """Run ``argv`` in its own process group; kill the group at ``limit`` seconds."""
    t0 = time.perf_counter()
    with open(log_path, 'w') as log:
        proc = subprocess.Popen(argv, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)
        try:
            rc = proc.wait(timeout=limit)
            status = 'ok' if rc == 0 else 'failed'
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            rc, status = None, 'timeout'
    with open(log_path, errors='replace') as f:
        tail = f.read()[-2500:]
    return dict(part=name, status=status, rc=rc, seconds=time.perf_counter() - t0, limit_s=limit,
                log_tail=None if status == 'ok' else tail)


def part_commands(args, s: dict, configs: dict, work: str, peak: Optional[float], gpu_gib: float) -> dict:
    """The command of every part; each writes its JSON to ``<work>/<part>.json``."""
    me = [sys.executable, osp.abspath(__file__), '--device', args.device] + (['--tiny'] if args.tiny else [])

    def inner(part: str, config: str, *extra: str) -> List[str]:
        return me + ['--part', part, '--config', config, '--part-out', osp.join(work, f'{part}.json'),
                     '--work-dir', osp.join(work, part), *extra]

    arch = 'deit-tiny' if args.tiny else 'b'
    bench = [sys.executable, osp.join(TOOLS, 'benchmark_pretrain.py'), '--device', args.device, '--arch', arch,
             '--dtype', 'bf16', '--warmup', str(s['warmup']), '--repeats', str(s['repeats'])]
    if peak:
        bench += ['--peak-tflops', str(peak)]
    if args.device == 'cpu':
        bench += ['--threads', '1']
    cmds = {
        'install': inner('install', configs['paper']),
        'bench_224': bench + ['--img-size', str(s['img']), '--batch-size', str(s['batch_224']),
                              '--out', osp.join(work, 'bench_224.json')],
        'bench_448': bench + ['--img-size', str(s['img_large']), '--batch-size', str(s['batch_448']),
                              '--out', osp.join(work, 'bench_448.json')],
        'plan_memory': [sys.executable, osp.join(TOOLS, 'plan_memory.py'), configs['paper'], '--gpu-mem',
                        f'{gpu_gib:.1f}', '--gpus', '1', '--total-batch', str(s['plan_batch']),
                        '--out', osp.join(work, 'plan_memory.json')],
        'runner_fp16': inner('runner', configs['paper'], '--amp', 'float16'),
        'runner_bf16': inner('runner', configs['paper'], '--amp', 'bfloat16'),
        'sdpa': inner('sdpa', configs['paper']),
        'variants': inner('variants', configs['paper'], '--config2', configs['cheap']),
        'prefix': inner('prefix', configs['aim']),
        'checkpointing': inner('checkpointing', configs['large']),
        'compile': bench + ['--img-size', str(s['img']), '--batch-size', str(s['batch_224']), '--paths',
                            'production', '--compile', '--out', osp.join(work, 'compile.json')],
    }
    for name in ('runner_fp16', 'runner_bf16'):  # their own JSON names
        cmds[name][cmds[name].index('--part-out') + 1] = osp.join(work, f'{name}.json')
        cmds[name][cmds[name].index('--work-dir') + 1] = osp.join(work, name)
    return cmds


def production_row(bench: Optional[dict]) -> Optional[dict]:
    if not bench:
        return None
    return next((r for r in bench.get('results', []) if r['path'] == 'production'), None)


def judge(results: dict) -> List[dict]:
    """The targets of issue 24 from the parts' results: value and verdict (met / missed / not measured)."""
    values: Dict[str, Optional[float]] = {}
    for size in ('224', '448'):
        row = production_row(results.get(f'bench_{size}'))
        values[f'speed_{size}'] = row.get('speedup') if row else None
        values[f'memory_{size}'] = row.get('mem_ratio') if row else None
    row = production_row(results.get('bench_224'))
    values['mfu_224'] = row.get('mfu') if row else None
    plan = results.get('plan_memory')
    planned = None
    if plan:
        measured = plan['variants']['no_cp']['measured']
        planned = measured.get(str(plan['total_batch']))
    for amp in ('fp16', 'bf16'):
        run = results.get(f'runner_{amp}')
        peak = run.get('peak_mem_bytes') if run else None
        values[f'plan_{amp}'] = abs(peak / planned - 1) if peak and planned else None
        values[f'finite_{amp}'] = run['finite'] / run['iterations'] if run else None
    out = []
    for name, what, op, threshold in TARGETS:
        v = values.get(name)
        verdict = 'not measured' if v is None else (
            'met' if (v >= threshold if op == '>=' else v <= threshold) else 'missed')
        out.append(dict(target=name, what=what, value=v, wanted=f'{op} {threshold:g}', verdict=verdict))
    return out


def fmt(v, spec: str = '.2f') -> str:
    return '-' if v is None else format(v, spec)


def part_figures(name: str, r: Optional[dict]) -> str:
    """One line of the main figures of a part's result."""
    if not r:
        return ''
    if name.startswith('bench') or name == 'compile':
        rows = {x['path']: x for x in r['results']}
        p, a = rows.get('production'), rows.get('authors')
        text = f"production {p['images_per_s']:.1f} img/s, {p['peak_mem_mib']:.0f} MiB, " \
               f"{p['tflops_per_s']:.1f} TFLOP/s, MFU {fmt(p.get('mfu'), '.1%')}" if p else ''
        if a:
            text += f"; authors {a['images_per_s']:.1f} img/s, {a['peak_mem_mib']:.0f} MiB; " \
                    f"speed x{p['speedup']:.2f}, memory x{p['mem_ratio']:.2f}"
        return text
    if name == 'install':
        return f"saim_mm {r['modules']['saim_mm']['version']} from {r['site']}; mmcv ops: {r['mmcv_ops']}"
    if name == 'plan_memory':
        return f"planned step peak at batch {r['total_batch']}: " \
               f"{r['variants']['no_cp']['measured'][str(r['total_batch'])] / 2**30:.2f} GiB"
    if name.startswith('runner'):
        peak = r['peak_mem_bytes']
        return f"{r['optim_wrapper']} {r['dtype']}: {r['finite']}/{r['iterations']} finite losses, " \
               f"{fmt(r['images_per_s'], '.1f')} img/s ({fmt(r['images_per_s_wall'], '.1f')} with data), " \
               f"peak {fmt(peak / 2**30 if peak else None)} GiB"
    if name == 'sdpa':
        return '; '.join(f"{k}: {v}" for k, v in r['by_call_kind'].items())
    if name == 'variants':
        return '; '.join(f"{x['row']} {x['images_per_s']:.1f} img/s (x{x['time_over_floor']:.2f} floor time)"
                         for x in r['rows'])
    if name == 'prefix':
        return f"block vs boolean mask: output {r['output_rel_err']:.1e}, gradients {r['grad_max_rel_err']:.1e}; " + \
            '; '.join(f"{k} {v['step_s']:.3f} s (x{v['time_over_causal']:.2f} causal)" for k, v in r['rows'].items())
    if name == 'checkpointing':
        return f"time x{r['time_ratio']:.2f}, memory x{fmt(r.get('mem_ratio'))} with checkpointing"
    return ''


def text_report(report: dict) -> str:
    env = report['environment']
    lines = [f"gpu_check {env['date']}: {env['device_name']}, torch {env['torch']} (CUDA {env['cuda']}), "
             f"Python {env['python']}, bf16 peak {fmt(env['peak_bf16_tflops'], '.1f')} TFLOP/s",
             f"command: {env['command']}", '', 'part | status | s | figures', '--- | --- | --- | ---']
    for p in report['parts']:
        lines.append(f"{p['part']} | {p['status']} | {fmt(p.get('seconds'), '.0f')} | "
                     f"{part_figures(p['part'], report['results'].get(p['part']))}")
    lines += ['', 'target | value | wanted | verdict', '--- | --- | --- | ---']
    for t in report['targets']:
        lines.append(f"{t['what']} | {fmt(t['value'], '.3f')} | {t['wanted']} | {t['verdict']}")
    prof = (report['results'].get('sdpa') or {}).get('profile')
    if prof and any(t['verdict'] == 'missed' for t in report['targets']):
        lines += ['', f"where one production step's time goes (profiler, {prof['what']}, "
                      f"{prof['total_ms']:.1f} ms in all):"]
        lines += [f"  {k['share']:6.1%} {k['ms']:8.2f} ms {k['calls']:5d}x  {k['name'][:100]}"
                  for k in prof['top'][:8]]
    return '\n'.join(lines) + '\n'


def environment(args) -> dict:
    cuda = args.device == 'cuda'
    name = torch.cuda.get_device_name() if cuda else platform.processor() or platform.machine()
    return dict(date=datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC'),
                device=args.device, device_name=name, tiny=args.tiny,
                gpu_mem_gib=torch.cuda.get_device_properties(0).total_memory / 2**30 if cuda else None,
                peak_bf16_tflops=peak_tflops(name) if cuda else None, torch=torch.__version__,
                cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version() if cuda else None,
                python=platform.python_version(), cpu_count=os.cpu_count(), budget_s=args.budget_s,
                command=' '.join([osp.relpath(sys.argv[0], REPO)] + sys.argv[1:]))


def orchestrate(args) -> int:
    s = sizes(args.tiny)
    os.makedirs(args.out_dir, exist_ok=True)
    work = args.work_dir or tempfile.mkdtemp(prefix='gpu_check_')
    os.makedirs(work, exist_ok=True)
    env_info = environment(args)
    configs = dict(paper=PAPER, large=LARGE, cheap=CHEAP, aim=AIM)
    if args.tiny:
        configs = {k: tiny_config(v, work, 24 if k == 'large' else 12) for k, v in configs.items()}
    cmds = part_commands(args, s, configs, work, env_info['peak_bf16_tflops'], env_info['gpu_mem_gib'] or 1.0)
    selected = args.parts or list(PARTS)
    child_env = dict(os.environ, PYTHONUNBUFFERED='1')
    print(f"gpu_check: {env_info['device_name']}, torch {env_info['torch']}; parts {' '.join(selected)}; "
          f"budget {args.budget_s:.0f} s; work dir {work}", flush=True)
    start = time.perf_counter()
    parts, results = [], {}
    log_all = open(osp.join(args.out_dir, 'gpu_check.log'), 'w')
    for name, limit in PARTS.items():
        if name not in selected:
            parts.append(dict(part=name, status='not selected'))
            continue
        left = args.budget_s - (time.perf_counter() - start)
        if left < MIN_START_S:
            parts.append(dict(part=name, status='skipped', reason=f'{left:.0f} s of the budget left'))
            print(f'[{name}] skipped: {left:.0f} s of the budget left', flush=True)
            continue
        log_path = osp.join(work, f'{name}.log')
        p = run_part(name, cmds[name], min(limit, left), log_path, child_env)
        out_json = osp.join(work, f'{name}.json')
        if p['status'] == 'ok':
            with open(out_json) as f:
                results[name] = json.load(f)
        parts.append(p)
        with open(log_path, errors='replace') as f:
            log_all.write(f'===== {name}: {p["status"]} in {p["seconds"]:.0f} s\n{f.read()}\n')
        log_all.flush()
        print(f"[{name}] {p['status']} in {p['seconds']:.0f} s  {part_figures(name, results.get(name))}",
              flush=True)
    log_all.close()
    report = dict(environment=env_info, parts=parts, results=results, targets=judge(results),
                  seconds=time.perf_counter() - start)
    with open(osp.join(args.out_dir, 'gpu_check.json'), 'w') as f:
        json.dump(report, f, indent=1)
    text = text_report(report)
    with open(osp.join(args.out_dir, 'gpu_check.txt'), 'w') as f:
        f.write(text)
    print('\n' + text + f"wrote {osp.join(args.out_dir, 'gpu_check.json')} and gpu_check.txt, gpu_check.log")
    if not args.work_dir and not args.keep_work:
        shutil.rmtree(work, ignore_errors=True)
    unfinished = [p['part'] for p in parts if p['status'] not in ('ok', 'not selected')]
    if unfinished:
        print(f"gpu_check: parts not finished: {' '.join(unfinished)}")
        return 1
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', choices=['cuda', 'cpu'], default='cuda')
    parser.add_argument('--tiny', action='store_true', help='tiny sizes and 1-2 steps: the logic, not figures')
    parser.add_argument('--out-dir', default='work_dirs/gpu_check',
                        help='gpu_check.json, gpu_check.txt and gpu_check.log are written here')
    parser.add_argument('--work-dir', help="the parts' JSON, logs and runner folders (default: a temporary "
                        'folder, removed at the end unless --keep-work)')
    parser.add_argument('--keep-work', action='store_true')
    parser.add_argument('--parts', nargs='+', choices=list(PARTS), help='run only these parts (default: all)')
    parser.add_argument('--budget-s', type=float, default=450.0, help='seconds for all parts together')
    # one part in this process (used by the orchestration)
    parser.add_argument('--part', choices=list(INNER), help=argparse.SUPPRESS)
    parser.add_argument('--part-out', help=argparse.SUPPRESS)
    parser.add_argument('--config', help=argparse.SUPPRESS)
    parser.add_argument('--config2', help=argparse.SUPPRESS)
    parser.add_argument('--amp', choices=['float16', 'bfloat16'], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.device == 'cuda' and not torch.cuda.is_available():
        print(f'gpu_check: no CUDA device is visible to torch {torch.__version__} ({sys.executable}); nothing '
              'measured (--device cpu --tiny rehearses the logic on a CPU).')
        return 2
    if args.part:
        result = INNER[args.part](args, sizes(args.tiny))
        os.makedirs(osp.dirname(osp.abspath(args.part_out)), exist_ok=True)
        with open(args.part_out, 'w') as f:
            json.dump(result, f, indent=1)
        return 0
    return orchestrate(args)


if __name__ == '__main__':
    sys.exit(main())
