import os
import os.path as osp
from typing import List, Optional

import torch
from mmengine.dist import get_rank, is_main_process
from mmengine.fileio import LocalBackend
from mmengine.hooks import CheckpointHook
from mmengine.model import is_model_wrapper
from mmpretrain.registry import HOOKS

from ...utils import ranks_flagging

REQUIRED_RESUME_KEYS = ('meta', 'state_dict', 'message_hub')


def fsync_file(path: str) -> None:
    """Flush ``path`` (a file or a directory) to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_text(path: str, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see either the old or the new content, never a part."""
    tmp = f'{path}.tmp'
    with open(tmp, 'w') as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """mmengine's ``CheckpointHook`` made crash-safe for local work dirs.

    mmengine 0.10 writes a checkpoint in place (``open(path, 'wb')``), rewrites ``last_checkpoint`` in
    place, and deletes the oldest kept checkpoint *before* writing the new one. A crash (SIGKILL, node
    failure, full disk) at the wrong moment leaves a truncated ``epoch_k.pth``, an empty
    ``last_checkpoint`` (auto-resume then finds nothing and starts over) or, with ``max_keep_ckpts=1``, no
    complete checkpoint at all. This hook keeps every argument and behaviour of ``CheckpointHook`` but:

    1. writes each checkpoint to ``<name>.tmp``, flushes it to the disk and renames it over ``<name>``
       (``os.replace`` is atomic), so a file with a checkpoint's name is always complete;
    2. replaces ``last_checkpoint`` atomically, after the checkpoint it names is complete;
    3. deletes checkpoints beyond ``max_keep_ckpts`` only after that;
    4. refuses (``FloatingPointError`` on every rank) to save weights that are not finite, so a diverged
       model never becomes the checkpoint that resume picks. The verdict is agreed across ranks (one
       all-reduce of a flag per rank, as in ``NonFiniteLossHook``) before anything is saved: under FSDP or
       DeepSpeed each rank holds a shard, and a rank that stopped alone would leave the others waiting in
       the checkpoint's gather;
    5. when resuming, rejects a file that is not an mmengine training checkpoint (e.g. a published
       weights-only model) with an error naming the file, instead of mmengine's ``KeyError: 'meta'``.

    Checkpoints on other storage backends (``backend_args``/``out_dir`` on object stores, whose puts are
    atomic) and best-metric checkpoints are saved by ``CheckpointHook`` unchanged.

    Args:
        check_finite (bool): Check that all parameters are finite before saving. Defaults to True.
        **kwargs: Arguments of :class:`mmengine.hooks.CheckpointHook`.
    """

    def __init__(self, check_finite: bool = True, **kwargs) -> None:
        super().__init__(**kwargs)
        self.check_finite = check_finite

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Reject a resume from a file that lacks the training state mmengine needs."""
        if not getattr(runner, '_resume', False):
            return
        missing = [key for key in REQUIRED_RESUME_KEYS if key not in checkpoint]
        if missing:
            from mmengine.runner.checkpoint import find_latest_checkpoint
            source = runner._load_from or find_latest_checkpoint(runner.work_dir)
            raise ValueError(
                f'Cannot resume from {source}: it is not an mmengine training checkpoint (it lacks '
                f'{missing}; a training checkpoint holds {list(REQUIRED_RESUME_KEYS)}). To initialise a '
                'model from weights only, use load_from without resume.')

    def non_finite_parameters(self, runner) -> List[str]:
        """Names of the model's parameters that hold NaN or inf."""
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        return [name for name, p in model.named_parameters() if not bool(torch.isfinite(p).all())]

    def _refuse_non_finite(self, runner, ckpt_filename: str, iteration: int) -> None:
        """Raise ``FloatingPointError`` on every rank if any rank holds a non-finite parameter."""
        bad = self.non_finite_parameters(runner)
        ranks = ranks_flagging(bool(bad))
        if not ranks:
            return
        names = f' {bad[:5]}{" ..." if len(bad) > 5 else ""} ({len(bad)} in all)' if bad else ''
        raise FloatingPointError(
            f'Refusing to save {ckpt_filename} after iteration {iteration}: parameters{names} are not finite '
            f'on rank(s) {ranks} (this is rank {get_rank()}). The last good checkpoint is '
            f'{runner.message_hub.get_info("last_ckpt")}.')

    def _save_checkpoint_with_step(self, runner, step: int, meta: dict) -> None:
        ckpt_filename = self.filename_tmpl.format(step)
        if self.check_finite:
            self._refuse_non_finite(runner, ckpt_filename, meta['iter'])
        if not isinstance(self.file_backend, LocalBackend):
            return super()._save_checkpoint_with_step(runner, step, meta)
        ckpt_path = osp.join(self.out_dir, ckpt_filename)

        # Same bookkeeping as CheckpointHook, but the outdated checkpoint is deleted after the new one is
        # complete (CheckpointHook deletes it first).
        outdated: Optional[int] = None
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids and self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                outdated = self.keep_ckpt_ids.popleft()
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))
        self.last_ckpt = ckpt_path
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)

        tmp_filename = f'{ckpt_filename}.tmp'
        runner.save_checkpoint(
            self.out_dir,
            tmp_filename,
            self.file_client_args,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler,
            meta=meta,
            by_epoch=self.by_epoch,
            backend_args=self.backend_args,
            **self.args)
        if not is_main_process():  # Runner.save_checkpoint writes on the main process only
            return
        tmp_path = osp.join(self.out_dir, tmp_filename)
        fsync_file(tmp_path)
        os.replace(tmp_path, ckpt_path)
        fsync_file(self.out_dir)
        atomic_write_text(osp.join(runner.work_dir, 'last_checkpoint'), ckpt_path)
        if outdated is not None:
            old = osp.join(self.out_dir, self.filename_tmpl.format(outdated))
            if osp.isfile(old):
                os.remove(old)
