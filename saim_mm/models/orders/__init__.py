"""Generation orders, chosen by ``SAIM(order=...)``: a short name below or a config dict."""
from .base_order import BaseGenerationOrder, FixedGenerationOrder
from .centre_out_order import CentreOutOrder
from .checkerboard_order import CheckerboardOrder
from .fixed_random_order import FixedRandomOrder
from .random_segment_order import RandomSegmentOrder
from .raster_order import RasterOrder
from .spiral_order import SpiralOrder
from .stochastic_order import StochasticOrder

# the names ``SAIM(order=NAME)`` accepts
ORDER_TYPES = {
    'stochastic': 'StochasticOrder',
    'raster': 'RasterOrder',
    'spiral': 'SpiralOrder',
    'centre_out': 'CentreOutOrder',
    'checkerboard': 'CheckerboardOrder',
    'fixed_random': 'FixedRandomOrder',
    'random_segments': 'RandomSegmentOrder',
}

__all__ = [
    'ORDER_TYPES', 'BaseGenerationOrder', 'FixedGenerationOrder', 'StochasticOrder', 'RasterOrder',
    'SpiralOrder', 'CentreOutOrder', 'CheckerboardOrder', 'FixedRandomOrder', 'RandomSegmentOrder'
]
