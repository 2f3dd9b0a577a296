from .generation_order import check_order, gather_tokens, segment_masks
from .transformer_layer import SAIMTransformerLayer, attend
from .window_attention import RelativePositionBias, window_merge, window_partition

__all__ = [
    'check_order', 'gather_tokens', 'segment_masks', 'SAIMTransformerLayer', 'attend',
    'RelativePositionBias', 'window_merge', 'window_partition'
]
