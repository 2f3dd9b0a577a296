import math
from typing import Dict, Optional

import torch
from mmengine.hooks import Hook
from mmpretrain.registry import HOOKS

from ...utils import ranks_flagging


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """Stop training at the first iteration whose loss is NaN or inf, before any checkpoint is written.

    After each iteration, every loss in the model's outputs (keys containing ``'loss'``) is checked. The
    verdict is combined over all ranks (one all-reduce of a flag), so every rank stops at the same
    iteration: a NaN on one rank has already reached every rank's weights through the gradient average,
    and a rank that carried on would hang in the next all-reduce or, on rank 0, save the diverged
    weights. The hook runs first in ``after_train_iter`` (priority ``VERY_HIGH``), before
    ``CheckpointHook``, and raises ``FloatingPointError`` naming the iteration, the epoch and batch, the
    values, and the last checkpoint (the one to resume from after fixing the cause).

    mmdet's ``CheckInvalidLossHook`` is not used: it asserts on the local loss only (other ranks run on),
    does not name the iteration, and disappears under ``python -O``.
    """

    priority = 'VERY_HIGH'

    @staticmethod
    def non_finite_losses(outputs: Optional[dict]) -> Dict[str, float]:
        """The non-finite entries ``{name: value}`` among the losses in ``outputs``."""
        bad = {}
        for name, value in (outputs or {}).items():
            if 'loss' not in name:
                continue
            value = float(value.detach().float().mean()) if isinstance(value, torch.Tensor) else float(value)
            if not math.isfinite(value):
                bad[name] = value
        return bad

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs: Optional[dict] = None) -> None:
        bad = self.non_finite_losses(outputs)
        ranks = ranks_flagging(bool(bad))
        if not ranks:
            return
        where = f'iteration {runner.iter + 1}'
        if hasattr(runner.train_loop, 'max_epochs'):
            where += (f' (epoch {runner.epoch + 1}, batch {batch_idx + 1}/{len(runner.train_dataloader)})')
        values = bad if bad else 'finite here; non-finite on another rank'
        raise FloatingPointError(
            f'Non-finite loss at {where} on rank(s) {ranks}: {values}. Training stopped before this '
            f'iteration was checkpointed; the last checkpoint is {runner.message_hub.get_info("last_ckpt")}. '
            'Fix the cause (e.g. lower the learning rate, add gradient clipping, check the data) and resume.')
