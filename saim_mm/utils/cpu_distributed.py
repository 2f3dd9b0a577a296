"""Distributed training on CPU-only machines (gloo) with mmengine's ``pytorch`` launcher.

mmengine 0.10's ``pytorch`` launcher calls ``torch.cuda.set_device`` and wraps the model in DDP with
``device_ids=[LOCAL_RANK]``; both fail without a GPU. On such a machine the process group is started here
with gloo (mmengine then skips its own ``init_dist``) and DDP is built without device ids.
"""
import torch
import torch.distributed as dist
from mmengine.config import Config


def setup_cpu_distributed(cfg: Config) -> bool:
    """Prepare ``cfg`` for a CPU-only ``pytorch``-launched run. Returns True if it did anything."""
    if cfg.get('launcher') != 'pytorch' or torch.cuda.is_available():
        return False
    if not dist.is_initialized():
        dist.init_process_group(backend='gloo')
    wrapper = dict(cfg.get('model_wrapper_cfg') or dict(type='MMDistributedDataParallel'))
    wrapper['device_ids'] = None
    wrapper.setdefault('broadcast_buffers', False)
    wrapper.setdefault('find_unused_parameters', cfg.get('find_unused_parameters', False))
    cfg.model_wrapper_cfg = wrapper
    return True
