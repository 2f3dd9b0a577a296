"""Reference implementations that the tests and benchmarks compare saim_mm's production code against."""
from .dense_mask import dense_mask_predictions, masked_block_forward, permutation_masks

__all__ = ['dense_mask_predictions', 'masked_block_forward', 'permutation_masks']
