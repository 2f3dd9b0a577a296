"""Memory planner for SAIM pre-training configs: how large a per-GPU batch fits, with and without
activation checkpointing, and the gradient accumulation that keeps the total batch.

    python tools/analysis/plan_memory.py configs/saim/saim_vit-large-p16_8xb256-amp-coslr-800e_in1k.py \\
        --gpu-mem 40 80 [--gpus 8] [--total-batch 2048] [--out plan.json]

For the config's model at full size it prints the parameters, the FLOPs of one training image (forward +
backward; with checkpointing the recomputed forward too), the activation memory per image with and without
activation checkpointing, and for each GPU memory the largest per-GPU batch (a power of two, so that GPUs x
batch x accumulation is the total batch), its step peak, and the ``optim_wrapper.accumulative_counts``
for it.

The figures are measured, not taken from a formula. The model is built under torch's ``FakeTensorMode``
(tensors with shapes and dtypes but no storage: ViT-H at batch 256 costs no memory and seconds) and
training steps (forward, backward, then the AdamW step with its states already there, ``foreach`` as on a
GPU) run under torch's ``MemTracker``, which counts the bytes of every tensor alive at every moment
(parameters, gradients, optimiser states, activations, temporaries), and ``FlopCounterMode``, which counts
the FLOPs of every matrix product and attention. Mixed precision is the config's (bf16 or fp16 autocast
for ``AmpOptimWrapper``), run with the CPU's autocast: the same 2-byte matrix products, and the CPU's
flash attention, which keeps what a GPU's keeps (output and log-sum-exp). The step peak is measured at the
largest per-GPU batch and half of it; where that does not fit, the batch is estimated from the growth per
image and measured again, halving until it fits.

A GPU is budgeted as ``--usable`` (0.9) of its memory minus ``--reserve-gib`` (1 GiB): the CUDA context,
cuBLAS workspaces and the caching allocator's fragmentation, which tensors do not show. For an FSDP config
(``strategy.type='FSDPStrategy'``) the parameters, gradients and optimiser states at each peak are divided
by the number of GPUs and the largest FSDP unit (a transformer block, fp32) is added twice (gathered and
prefetched): computed from the measured parts. A DeepSpeed config is planned as the same model with
autocast and nothing sharded, an upper bound of what ZeRO-1 with bf16 weights needs.
"""
import argparse
import json
import math
import os
import os.path as osp
import sys
import time
from typing import Dict, List, Optional

import torch

GIB = 2**30
CATEGORIES = ('Parameter', 'Buffer', 'Gradient', 'Optstate', 'Activation', 'Temp', 'Other')


def load_config(path: str, options: Optional[dict] = None):
    from mmengine.config import Config
    cfg = Config.fromfile(path)
    if options:
        cfg.merge_from_dict(options)
    return cfg


def autocast_dtype(cfg) -> Optional[torch.dtype]:
    """The dtype the config trains its matrix products in (None: fp32)."""
    strategy = cfg.get('strategy') or {}
    if strategy.get('type') == 'DeepSpeedStrategy':
        if (strategy.get('bf16') or {}).get('enabled'):
            return torch.bfloat16
        if (strategy.get('fp16') or {}).get('enabled'):
            return torch.float16
        return None
    wrapper = cfg.optim_wrapper
    if wrapper.get('type') == 'AmpOptimWrapper':
        return getattr(torch, wrapper.get('dtype') or 'float16')
    if wrapper.get('type') == 'CPUAmpOptimWrapper':
        return torch.bfloat16
    return None


def model_cfg(cfg, with_cp: bool) -> dict:
    model = cfg.model.copy()
    model.backbone = dict(model.backbone, with_cp=with_cp)
    model.neck = dict(model.neck, with_cp=with_cp)
    if isinstance(model.backbone.get('init_cfg'), dict):
        model.backbone['init_cfg'] = None  # nothing is loaded: only the structure counts
    return model


def build_fake_model(cfg, with_cp: bool):
    """The config's model with fake tensors, in training mode."""
    import saim_mm  # noqa: F401
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmpretrain')):
        return MODELS.build(model_cfg(cfg, with_cp)).train()


def image_shape(model) -> tuple:
    h, w = model.backbone.patch_resolution
    p = model.backbone.patch_size
    return 3, h * p, w * p


def count_params(cfg) -> Dict[str, int]:
    from torch._subclasses.fake_tensor import FakeTensorMode
    with FakeTensorMode():
        model = build_fake_model(cfg, with_cp=False)
        parts = dict(encoder=model.backbone, decoder=model.neck, head=model.head)
        out = {name: sum(p.numel() for p in m.parameters()) for name, m in parts.items()}
        out['total'] = sum(p.numel() for p in model.parameters())
        out['trainable'] = sum(p.numel() for p in model.parameters() if p.requires_grad)
        blocks = [sum(p.numel() for p in b.parameters()) for b in model.backbone.layers]
        out['largest_block'] = max(blocks)
    return out


def cpu_attention_flops() -> dict:
    """FlopCounterMode's attention formulas (full square, as on a GPU) for the CPU's attention kernel,
    which it has none for."""
    import functools

    from torch.utils import flop_counter
    aten = torch.ops.aten
    mapping = {}
    for cpu_op, formula in ((aten._scaled_dot_product_flash_attention_for_cpu, flop_counter.sdpa_flop),
                            (aten._scaled_dot_product_flash_attention_for_cpu_backward,
                             flop_counter.sdpa_backward_flop)):
        raw = functools.partial(formula)  # already reads shapes from the op's arguments: not to be wrapped again
        raw._get_raw = True
        mapping[cpu_op] = raw
    return mapping


CPU_ATTENTION_FLOPS = cpu_attention_flops()


def step_flops(cfg, with_cp: bool, batch: int = 1) -> float:
    """FLOPs of forward + backward (+ recomputation) per image, counted by ``FlopCounterMode``."""
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.utils.flop_counter import FlopCounterMode
    dtype = autocast_dtype(cfg)
    with FakeTensorMode():
        model = build_fake_model(cfg, with_cp)
        x = torch.randn(batch, *image_shape(model))
        counter = FlopCounterMode(display=False, custom_mapping=CPU_ATTENTION_FLOPS)
        with counter:
            with torch.autocast('cpu', dtype=dtype or torch.bfloat16, enabled=dtype is not None):
                loss = model.loss(x)['loss']
            loss.backward()
    return counter.get_total_flops() / batch


def peak_tracker():
    """torch's ``MemTracker`` keeping the global peak only.

    ``MemTracker`` also updates the peak of every module seen so far at every operation, which makes a
    ViT-L step take minutes; this planner uses the global peak only, so that part is skipped.
    """
    from torch.distributed._tools.mem_tracker import MemTracker

    class PeakTracker(MemTracker):

        def _update_peak_stats(self, peak_state) -> None:
            for dev, snap in self._curr_mem_snap.items():
                if self._peak_mem.get(dev, 0) < snap['Total']:
                    self._peak_mem[dev] = snap['Total']
                    self._peak_mem_snap[dev] = dict(snap)

    return PeakTracker()


def measure_step(cfg, with_cp: bool, batch: int) -> Dict[str, float]:
    """One training step at ``batch``: the peak of forward + backward and the peak of the AdamW step (bytes
    by category at each peak), and the activations kept for the backward pass (bytes after the forward
    minus before it)."""
    from torch._subclasses.fake_tensor import FakeTensorMode
    dtype = autocast_dtype(cfg)
    with FakeTensorMode():
        model = build_fake_model(cfg, with_cp)
        params = [p for p in model.parameters() if p.requires_grad]
        for p in model.parameters():  # MemTracker hooks every parameter; SAIM's frozen position embedding
            p.requires_grad_(True)  # and final encoder norm (< 0.1% of the weights) get a gradient here
        optim = torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.95), weight_decay=0.05, foreach=True)
        for p in params:  # create the optimiser states: a steady-state step is measured
            p.grad = torch.zeros_like(p)
        optim.step()
        optim.zero_grad(set_to_none=True)
        x = torch.randn(batch, *image_shape(model))
        backward = peak_tracker()
        backward.track_external(model, optim, x)
        with backward:
            before = total(backward.get_tracker_snapshot('current'))
            with torch.autocast('cpu', dtype=dtype or torch.bfloat16, enabled=dtype is not None):
                loss = model.loss(x)['loss']
            kept = total(backward.get_tracker_snapshot('current')) - before
            loss.backward()
        del loss
        update = peak_tracker()
        update.track_external(model, optim)
        with update:
            optim.step()
            optim.zero_grad(set_to_none=True)
    out = dict(batch=batch, with_cp=with_cp, kept=kept)
    for phase, tracker in (('backward', backward), ('update', update)):
        peak = merged(tracker.get_tracker_snapshot('peak'))
        out[phase] = {k: peak.get(k, 0) for k in ('Total', ) + CATEGORIES}
    return out


def merged(snapshot: Dict[torch.device, Dict[str, int]]) -> Dict[str, int]:
    out: Dict[str, int] = {}
    for per_device in snapshot.values():
        for key, value in per_device.items():
            out[key] = out.get(key, 0) + value
    return out


def total(snapshot) -> int:
    return merged(snapshot).get('Total', 0)


def step_peak(m: Dict[str, float], gpus: int = 1, largest_block: int = 0, param_bytes: int = 4) -> float:
    """The step's peak (the larger of backward and update); with ``gpus`` > 1 (FSDP) the parameters,
    gradients and optimiser states are divided among the GPUs and the largest FSDP unit is added twice."""
    peaks = []
    for phase in ('backward', 'update'):
        p = m[phase]
        if gpus > 1:
            states = p['Parameter'] + p['Gradient'] + p['Optstate']
            peaks.append(p['Total'] - states + states / gpus + 2 * largest_block * param_bytes)
        else:
            peaks.append(p['Total'])
    return max(peaks)


class Planner:
    """Measures a config's training step at given batches and finds the largest per-GPU batch that fits.

    Args:
        cfg (Config): A SAIM pre-training config.
        gpus (int): GPUs (FSDP configs divide the weights and states among them).
        usable (float): Fraction of a GPU's memory the tensors may use.
        reserve_gib (float): GiB kept aside besides (CUDA context).
    """

    def __init__(self, cfg, gpus: int = 8, usable: float = 0.9, reserve_gib: float = 1.0):
        self.cfg, self.gpus = cfg, gpus
        self.usable, self.reserve = usable, reserve_gib * GIB
        self.fsdp = (cfg.get('strategy') or {}).get('type') == 'FSDPStrategy'
        self.params = count_params(cfg)
        self.cache: Dict[tuple, Dict[str, float]] = {}

    def step(self, with_cp: bool, batch: int) -> Dict[str, float]:
        key = (with_cp, batch)
        if key not in self.cache:
            m = measure_step(self.cfg, with_cp, batch)
            m['peak'] = step_peak(m, self.gpus if self.fsdp else 1, self.params['largest_block'])
            self.cache[key] = m
        return self.cache[key]

    def budget(self, gpu_gib: float) -> float:
        return gpu_gib * GIB * self.usable - self.reserve

    def slope(self, with_cp: bool, batch: int) -> float:
        """Bytes of step peak per image between ``batch / 2`` and ``batch`` (the batch-bound part)."""
        return (self.step(with_cp, batch)['peak'] - self.step(with_cp, batch // 2)['peak']) / (batch // 2)

    def largest_batch(self, with_cp: bool, gpu_gib: float, per_gpu_max: int) -> Dict[str, Optional[float]]:
        """The largest power-of-two per-GPU batch up to ``per_gpu_max`` whose measured step peak fits.

        The peak is measured at ``per_gpu_max`` and half of it; where that does not fit, the batch is
        estimated from the peak's growth per image there and then measured, stepping down until it fits.
        """
        budget = self.budget(gpu_gib)
        top = 2**int(math.floor(math.log2(per_gpu_max)))
        if self.step(with_cp, top)['peak'] <= budget:
            return dict(batch=top, peak=self.step(with_cp, top)['peak'])
        batch = top
        if top >= 2:
            per_image = max(self.slope(with_cp, top), 1.0)
            room = (budget - self.step(with_cp, top)['peak']) / per_image + top
            batch = 2**int(math.floor(math.log2(room))) if room >= 1 else 0
            batch = min(batch, top // 2)
        while batch >= 1:
            peak = self.step(with_cp, batch)['peak']
            if peak <= budget:
                return dict(batch=batch, peak=peak)
            batch //= 2
        return dict(batch=None, peak=None)


def plan(config: str, gpu_mems: List[float], gpus: int = 8, total_batch: int = 2048, usable: float = 0.9,
         reserve_gib: float = 1.0) -> dict:
    cfg = load_config(config)
    if total_batch % gpus:
        raise ValueError(f'--total-batch {total_batch} is not divisible by --gpus {gpus}')
    planner = Planner(cfg, gpus=gpus, usable=usable, reserve_gib=reserve_gib)
    dtype = autocast_dtype(cfg)
    result = dict(config=config, precision=str(dtype).replace('torch.', '') if dtype else 'float32',
                  image=list(image_shape_of(cfg)), params=planner.params, gpus=gpus, total_batch=total_batch,
                  fsdp=planner.fsdp, usable=usable, reserve_gib=reserve_gib, variants={})
    per_gpu_max = total_batch // gpus
    for with_cp in (False, True):
        variant = dict(flops_per_image=step_flops(cfg, with_cp), fits={})
        for gib in gpu_mems:
            fit = planner.largest_batch(with_cp, gib, per_gpu_max)
            if fit['batch']:
                fit['accumulative_counts'] = total_batch // (gpus * fit['batch'])
            variant['fits'][str(gib)] = fit
        measured = sorted(b for cp, b in planner.cache if cp == with_cp)
        big = measured[-1]
        variant.update(
            activations_per_image=planner.step(with_cp, big)['kept'] / big,
            measured={str(b): planner.step(with_cp, b)['peak'] for b in measured})
        result['variants']['with_cp' if with_cp else 'no_cp'] = variant
    return result


def image_shape_of(cfg) -> tuple:
    from torch._subclasses.fake_tensor import FakeTensorMode
    with FakeTensorMode():
        return image_shape(build_fake_model(cfg, with_cp=False))


def print_plan(r: dict) -> None:
    p = r['params']
    print(f"{r['config']}: precision {r['precision']}, images {r['image'][1]}x{r['image'][2]}, "
          f"{r['gpus']} GPUs, total batch {r['total_batch']}{', FSDP' if r['fsdp'] else ''}")
    print(f"parameters: {p['total'] / 1e6:.1f} M (encoder {p['encoder'] / 1e6:.1f} M, decoder "
          f"{p['decoder'] / 1e6:.1f} M, trainable {p['trainable'] / 1e6:.1f} M)")
    print(f"GPU budget: {r['usable']:.0%} of its memory minus {r['reserve_gib']:g} GiB")
    gpu_cols = list(next(iter(r['variants'].values()))['fits'])
    head = ['checkpointing', 'GFLOPs/image', 'activations/image (MiB)'] + [
        f'{g} GB: batch x accum (peak GiB)' for g in gpu_cols]
    print(' | '.join(head))
    print(' | '.join('---' for _ in head))
    for name, v in r['variants'].items():
        cells = ['yes' if name == 'with_cp' else 'no', f"{v['flops_per_image'] / 1e9:.1f}",
                 f"{v['activations_per_image'] / 2**20:.1f}"]
        for g in gpu_cols:
            fit = v['fits'][g]
            cells.append(f"{fit['batch']} x {fit['accumulative_counts']} ({fit['peak'] / GIB:.1f})"
                         if fit['batch'] else 'does not fit')
        print(' | '.join(cells))
        print(f"  measured step peaks (GiB) by batch: "
              f"{', '.join(f'{b}: {p / GIB:.2f}' for b, p in v['measured'].items())}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='SAIM pre-training config')
    parser.add_argument('--gpu-mem', type=float, nargs='+', default=[40, 80], help='GPU memory in GB (GiB)')
    parser.add_argument('--gpus', type=int, default=8)
    parser.add_argument('--total-batch', type=int, default=2048)
    parser.add_argument('--usable', type=float, default=0.9, help='fraction of GPU memory tensors may use')
    parser.add_argument('--reserve-gib', type=float, default=1.0, help='GiB kept for the CUDA context')
    parser.add_argument('--out', help='write the plan to this JSON file')
    args = parser.parse_args()
    t0 = time.perf_counter()
    result = plan(args.config, args.gpu_mem, args.gpus, args.total_batch, args.usable, args.reserve_gib)
    result['seconds'] = time.perf_counter() - t0
    print_plan(result)
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(result, f, indent=2)
        print(f'wrote {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
