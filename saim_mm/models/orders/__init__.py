"""Generation orders, chosen by ``SAIM(order=...)``: the short ``name`` of an order class or a config dict.

A new order is a registered subclass of ``BaseGenerationOrder`` (or ``FixedGenerationOrder``) with a
``name``, in a file of its own here (``base_order.py`` states the contract).
"""
from .base_order import BaseGenerationOrder, FixedGenerationOrder, named_orders
from .centre_out_order import CentreOutOrder
from .checkerboard_order import CheckerboardOrder
from .fixed_random_order import FixedRandomOrder
from .random_segment_order import RandomSegmentOrder
from .raster_order import RasterOrder
from .semantic_order import SemanticOrder
from .spiral_order import SpiralOrder
from .stochastic_order import StochasticOrder

__all__ = [
    'BaseGenerationOrder', 'FixedGenerationOrder', 'named_orders', 'StochasticOrder', 'RasterOrder', 'SpiralOrder',
    'CentreOutOrder', 'CheckerboardOrder', 'FixedRandomOrder', 'RandomSegmentOrder', 'SemanticOrder'
]
