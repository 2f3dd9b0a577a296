from typing import Optional

from mmengine.logging import MessageHub
from mmengine.model import ExponentialMovingAverage
from mmpretrain.models.utils import CosineEMA
from mmpretrain.registry import MODELS
from torch import Tensor, nn

from .base_teacher import BaseTeacher, check_block, parameters_to_buffers, vit_patch_tokens

SCHEDULES = ('cosine', 'constant')


class _EncoderEMA(CosineEMA):
    """mmpretrain's ``CosineEMA`` of an encoder whose averaged weights are buffers.

    Two changes to it: the averaged tensors are read from the module at every update (a buffer is replaced,
    not updated in place, when the module moves to another device, so a dict taken once would go stale),
    and without ``max_iters`` in mmengine's ``MessageHub`` (outside a runner) or with the ``'constant'``
    schedule the momentum stays ``momentum``.
    """

    def __init__(self, model: nn.Module, momentum: float, end_momentum: float, schedule: str) -> None:
        super().__init__(model, momentum=momentum, end_momentum=end_momentum, update_buffers=True)
        self.schedule = schedule

    def avg_func(self, averaged_param: Tensor, source_param: Tensor, steps: int) -> None:
        """averaged = (1 - m) * averaged + m * source, in place: ``CosineEMA``'s m, or ``momentum``."""
        if self.schedule == 'constant' or not MessageHub.get_current_instance().get_info('max_iters'):
            ExponentialMovingAverage.avg_func(self, averaged_param, source_param, steps)
        else:  # steps as a Python int: a 0-d long tensor would make CosineEMA compute m in float32
            super().avg_func(averaged_param, source_param, int(steps))

    def update_parameters(self, model: nn.Module) -> None:
        """Average ``model``'s state into the module (the first call copies it)."""
        self.avg_parameters = self.module.state_dict()
        super().update_parameters(model)


@MODELS.register_module()
class EMATeacher(BaseTeacher):
    """An exponential moving average of the student's encoder (SemAIM's feature targets).

    :meth:`attach` copies the encoder (``SAIMViT``); :meth:`update`, once per training step before the
    teacher's forward, sets every tensor of the copy to ``(1 - m) * teacher + m * student`` (mmengine's
    convention: m is the weight of the student, small), and its first call copies the student. m follows
    mmpretrain's ``CosineEMA``: from ``momentum`` at the start to ``end_momentum`` at ``max_iters``
    (read from mmengine's ``MessageHub``, which the runner fills); with ``schedule='constant'``, or outside
    a runner (no ``max_iters``), m = ``momentum`` throughout. The averaged weights are buffers, kept in the
    state dict (under ``head.teacher.ema.``) so that a resumed run continues the average.

    The features are the patch tokens of the plain (bidirectional) ViT forward of the averaged encoder,
    after the last block and the final norm, or after block ``block``.

    Args:
        momentum (float): m at the start, in (0, 1). Defaults to 0.004 (a teacher decay of 0.996).
        end_momentum (float): m at ``max_iters`` (cosine schedule), in [0, 1). Defaults to 0.
        schedule (str): ``'cosine'`` or ``'constant'``. Defaults to ``'cosine'``.
        block (int, optional): The block whose output is the feature; None = the last block (with the
            final norm). Defaults to None.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 momentum: float = 0.004,
                 end_momentum: float = 0.,
                 schedule: str = 'cosine',
                 block: Optional[int] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        for key, value, low_open in (('momentum', momentum, True), ('end_momentum', end_momentum, False)):
            if not isinstance(value, (int, float)) or not (0 < value < 1 if low_open else 0 <= value < 1):
                interval = '(0, 1)' if low_open else '[0, 1)'
                raise ValueError(f'teacher.{key}={value!r} must be a number in {interval}: the weight of the '
                                 'student in averaged = (1 - m) * averaged + m * student.')
        if schedule not in SCHEDULES:
            raise ValueError(f'teacher.schedule={schedule!r} must be one of {SCHEDULES}.')
        self.momentum, self.end_momentum, self.schedule, self.block = momentum, end_momentum, schedule, block
        self.ema: Optional[_EncoderEMA] = None

    def attach(self, encoder: nn.Module) -> None:
        """Copy ``encoder`` (``SAIMViT``) as the averaged encoder; the student is kept by reference."""
        if self.ema is not None:
            raise RuntimeError('EMATeacher is already attached to an encoder.')
        self._block = check_block(self.block if self.block is not None else -1, len(encoder.layers))
        self.ema = _EncoderEMA(encoder, self.momentum, self.end_momentum, self.schedule)
        parameters_to_buffers(self.ema.module)
        self.ema.train(False)
        self.__dict__['student'] = encoder  # not a sub-module: its weights are the student's, not the teacher's

    def _require_attached(self) -> None:
        if self.ema is None:
            raise RuntimeError('EMATeacher is not attached to an encoder: SAIM attaches its head '
                               '(FeatureTargetHead.attach(encoder)) when it is built.')

    @property
    def encoder(self) -> nn.Module:
        """The averaged encoder (a ``SAIMViT``; its weights are buffers)."""
        self._require_attached()
        return self.ema.module

    @property
    def out_channels(self) -> int:
        """The encoder width."""
        return self.encoder.embed_dims

    def init_weights(self) -> None:
        """Copy the student again (the model initialises its encoder before its head): the teacher is the
        initialised encoder until the first update, which copies it once more."""
        if self.ema is not None:
            source = self.student.state_dict()
            for name, value in self.ema.module.state_dict().items():
                value.copy_(source[name])
        self._is_init = True

    def update(self) -> None:
        """teacher = (1 - m) * teacher + m * student for every tensor; the first call copies the student."""
        self._require_attached()
        self.ema.update_parameters(self.student)

    def features(self, images: Tensor) -> Tensor:
        """Patch tokens (B, N, C) of the averaged encoder after block ``block``."""
        return vit_patch_tokens(self.encoder, images, self._block)
