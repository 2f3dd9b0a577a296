"""How large a per-GPU batch of a SAIM pre-training config fits, with and without activation checkpointing.

The figures are measured on fake tensors (:func:`.cost.fake_step_memory`, :func:`.cost.training_flops_per_image`):
the config's model at full size costs no memory. A GPU is budgeted as ``usable`` of its memory minus
``reserve_gib`` (the CUDA context, cuBLAS workspaces and the caching allocator's fragmentation, which tensors
do not show). For an FSDP config (``strategy.type='FSDPStrategy'``) the parameters, gradients and optimiser
states at each peak are divided by the number of GPUs and the largest FSDP unit (a transformer block, fp32)
is added twice (gathered and prefetched). A DeepSpeed config is planned as the same model with autocast and
nothing sharded, an upper bound of what ZeRO-1 with bf16 weights needs.
"""
import math
from typing import Dict, List, Optional, Tuple

import torch

from .cost import fake_step_memory, training_flops_per_image
from .torch_internals import fake_tensor_mode

GIB = 2**30


def load_config(path: str, options: Optional[dict] = None):
    """The config file ``path`` with ``options`` merged (``--cfg-options`` style keys)."""
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
    """The config's model with ``with_cp`` in the encoder and decoder and no pretrained weights."""
    model = cfg.model.copy()
    model.backbone = dict(model.backbone, with_cp=with_cp)
    model.neck = dict(model.neck, with_cp=with_cp)
    if isinstance(model.backbone.get('init_cfg'), dict):
        model.backbone['init_cfg'] = None  # nothing is loaded: only the structure counts
    return model


def build_model(cfg, with_cp: bool):
    """The config's model (with fake tensors when called under ``FakeTensorMode``), in training mode."""
    from mmengine.registry import DefaultScope
    from mmengine.utils import import_modules_from_strings
    from mmpretrain.registry import MODELS
    if cfg.get('custom_imports'):  # registers the config's model types (saim_mm), as mmengine's Runner does
        import_modules_from_strings(**cfg.custom_imports)
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmpretrain')):
        return MODELS.build(model_cfg(cfg, with_cp)).train()


def image_shape(cfg) -> Tuple[int, int, int]:
    """(3, H, W) of the images the config's encoder takes (``model.backbone.img_size``, default 224)."""
    size = cfg.model.backbone.get('img_size', 224)
    h, w = (size, size) if isinstance(size, int) else size
    return 3, h, w


def pretrain_loss(model, x):
    """The pre-training loss of ``model`` on images ``x``."""
    return model.loss(x)['loss']


def count_params(cfg) -> Dict[str, int]:
    """Parameters of the encoder, decoder, head, all, the trainable ones and the largest encoder block."""
    with fake_tensor_mode():
        model = build_model(cfg, with_cp=False)
        parts = dict(encoder=model.backbone, decoder=model.neck, head=model.head)
        out = {name: sum(p.numel() for p in m.parameters()) for name, m in parts.items()}
        out['total'] = sum(p.numel() for p in model.parameters())
        out['trainable'] = sum(p.numel() for p in model.parameters() if p.requires_grad)
        out['largest_block'] = max(sum(p.numel() for p in b.parameters()) for b in model.backbone.layers)
    return out


def step_flops(cfg, with_cp: bool) -> float:
    """FLOPs of forward + backward (+ recomputation with ``with_cp``) per training image."""
    return training_flops_per_image(lambda: build_model(cfg, with_cp), pretrain_loss, image_shape(cfg),
                                    dtype=autocast_dtype(cfg))


def measure_step(cfg, with_cp: bool, batch: int) -> Dict:
    """:func:`.cost.fake_step_memory` of the config's model at ``batch``, with ``with_cp``."""
    out = fake_step_memory(lambda: build_model(cfg, with_cp), pretrain_loss, image_shape(cfg), batch,
                           dtype=autocast_dtype(cfg))
    out['with_cp'] = with_cp
    return out


def step_peak(m: Dict, gpus: int = 1, largest_block: int = 0, param_bytes: int = 4) -> float:
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
        self.cache: Dict[tuple, Dict] = {}

    def step(self, with_cp: bool, batch: int) -> Dict:
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
    """The plan of ``config`` for each GPU memory (GiB) of ``gpu_mems``, without and with checkpointing.

    Raises:
        ValueError: ``total_batch`` is not divisible by ``gpus``.
    """
    if total_batch % gpus:
        raise ValueError(f'--total-batch {total_batch} is not divisible by --gpus {gpus}')
    cfg = load_config(config)
    planner = Planner(cfg, gpus=gpus, usable=usable, reserve_gib=reserve_gib)
    dtype = autocast_dtype(cfg)
    result = dict(config=config, precision=str(dtype).replace('torch.', '') if dtype else 'float32',
                  image=list(image_shape(cfg)), params=planner.params, gpus=gpus, total_batch=total_batch,
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
