from .atomic_checkpoint_hook import AtomicCheckpointHook
from .non_finite_loss_hook import NonFiniteLossHook
from .resumable_randomness_hook import ResumableRandomnessHook

__all__ = ['AtomicCheckpointHook', 'NonFiniteLossHook', 'ResumableRandomnessHook']
