"""Building blocks of the models: the attention (and the one function that computes it), the block, and
the helpers that put tokens into a generation order."""
from .attention import SAIMAttention, attend
from .generation_order import check_order, gather_tokens, segment_masks
from .prefix_causal_attention import PrefixCausalAttention
from .transformer_layer import SAIMTransformerLayer

__all__ = ['PrefixCausalAttention', 'SAIMAttention', 'SAIMTransformerLayer', 'attend', 'check_order', 'gather_tokens',
           'segment_masks']
