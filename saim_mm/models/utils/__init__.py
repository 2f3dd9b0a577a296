from .dense_mask import dense_mask_predictions, permutation_masks
from .generation_order import (ORDER_MODES, causal_block_forward, check_order, gather_tokens,
                               sample_order)
from .window_attention import (RelativePositionBias, dense_block_forward, window_merge,
                               window_partition)

__all__ = [
    'ORDER_MODES', 'causal_block_forward', 'check_order', 'gather_tokens', 'sample_order',
    'dense_mask_predictions', 'permutation_masks', 'RelativePositionBias', 'dense_block_forward',
    'window_merge', 'window_partition'
]
