"""What an order is: the contract between ``SAIM`` and its generation order.

An order is a module, registered in ``MODELS``, that draws a (B, N) permutation of the patches per call
(:meth:`BaseGenerationOrder.forward`). Its class attribute ``name`` is the short name ``SAIM(order=NAME)``
accepts; :func:`named_orders` collects them from the registry. See docs/extending.md.
"""
from typing import Dict, Optional, Sequence, Tuple

import torch
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS
from torch import Tensor


class BaseGenerationOrder(BaseModule):
    """A generation order: which patch is predicted at which step.

    Subclasses implement :meth:`forward` and set ``name``. An order is ``fixed`` when every sample of
    every iteration gets the same permutation (then the model can run without a query stream, since the
    next position is known); ``segment_size`` G > 1 means consecutive groups of G steps are predicted
    together (block-causal attention: a step sees every earlier segment and, in the content stream, its
    own segment).

    Args:
        grid (tuple[int, int]): The patch grid (h, w); N = h * w. Filled in by ``SAIM`` from the encoder.
        init_cfg (dict, optional): Initialisation config.
    """
    name: Optional[str] = None  # the short name of SAIM(order=NAME); None for a base class
    fixed = False
    # True for an order computed from the images: SAIM then calls forward(batch_size, device,
    # images=(B, 3, H, W), model=<the SAIM model>), and the order may run model.backbone (or a teacher of
    # model.head) without gradients
    needs_images = False

    def __init__(self, grid: Sequence[int], init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.grid: Tuple[int, int] = (int(grid[0]), int(grid[1]))

    @property
    def num_patches(self) -> int:
        return self.grid[0] * self.grid[1]

    @property
    def segment_size(self) -> int:
        """G: steps predicted in parallel (1 = one patch at a time)."""
        return 1

    def forward(self, batch_size: int, device: Optional[torch.device] = None, **inputs) -> Tensor:
        """Draw the orders of a batch.

        Args:
            batch_size (int): B.
            device (torch.device, optional): Device of the result.
            **inputs: ``images`` and ``model``, given only to an order with ``needs_images = True``.

        Returns:
            Tensor: Long tensor (B, N); row b is a permutation of ``range(N)`` (raster patch indices).
        """
        raise NotImplementedError


class FixedGenerationOrder(BaseGenerationOrder):
    """An order that is the same for every sample, given by :meth:`permutation` (computed once, kept in
    the buffer ``order``; in the checkpoint too when ``persistent``)."""
    fixed = True
    persistent = False

    def __init__(self, grid: Sequence[int], init_cfg: Optional[dict] = None) -> None:
        super().__init__(grid, init_cfg=init_cfg)
        with torch.device('cpu'):  # a small index table, computed on the CPU even inside a meta-device build
            perm = self.permutation()
            valid = torch.equal(perm.sort().values, torch.arange(self.num_patches))
        if not valid:
            raise AssertionError(f'{type(self).__name__}.permutation() is not a permutation of range(N)')
        self.register_buffer('order', perm, persistent=self.persistent)

    def permutation(self) -> Tensor:
        """The (N,) order over the grid."""
        raise NotImplementedError

    def forward(self, batch_size: int, device: Optional[torch.device] = None) -> Tensor:
        return self.order.to(device).expand(batch_size, -1)


def named_orders() -> Dict[str, type]:
    """The registered orders by their short ``name``: ``{'stochastic': StochasticOrder, ...}``.

    Raises:
        ValueError: two registered orders have the same name.
    """
    named: Dict[str, type] = {}
    for cls in MODELS.module_dict.values():
        if isinstance(cls, type) and issubclass(cls, BaseGenerationOrder) and cls.name is not None:
            if cls.name in named and named[cls.name] is not cls:
                raise ValueError(f'the orders {named[cls.name].__name__} and {cls.__name__} are both named '
                                 f'{cls.name!r}.')
            named[cls.name] = cls
    return named
