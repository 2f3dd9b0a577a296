from .generation_order import ORDER_MODES, check_order, gather_tokens, sample_order
from .transformer_layer import SAIMTransformerLayer, attend
from .window_attention import RelativePositionBias, window_merge, window_partition

__all__ = [
    'ORDER_MODES', 'check_order', 'gather_tokens', 'sample_order', 'SAIMTransformerLayer', 'attend',
    'RelativePositionBias', 'window_merge', 'window_partition'
]
