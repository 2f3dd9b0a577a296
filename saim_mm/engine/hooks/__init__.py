from .atomic_checkpoint_hook import AtomicCheckpointHook
from .non_finite_loss_hook import NonFiniteLossHook
from .plain_param_groups_hook import PlainParamGroupsHook
from .pretrained_init_check_hook import PretrainedInitCheckHook
from .resumable_randomness_hook import ResumableRandomnessHook

__all__ = [
    'AtomicCheckpointHook', 'NonFiniteLossHook', 'PlainParamGroupsHook', 'PretrainedInitCheckHook',
    'ResumableRandomnessHook'
]
