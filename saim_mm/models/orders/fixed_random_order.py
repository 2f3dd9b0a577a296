import torch
from mmpretrain.registry import MODELS
from torch import Tensor

from .base_order import FixedGenerationOrder


@MODELS.register_module()
class FixedRandomOrder(FixedGenerationOrder):
    """One random permutation, drawn when the model is built (from the run's seed) and used for every
    sample of the whole run. It is kept in the checkpoint (``order_generator.order``), so a resumed run and
    a reloaded model keep it."""
    name = 'fixed_random'
    persistent = True

    def permutation(self) -> Tensor:
        return torch.randperm(self.num_patches)
