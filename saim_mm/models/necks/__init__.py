"""Decoders: what turns the content stream into predictions (``base_decoder.py`` states the contract)."""
from .base_decoder import BaseDecoder
from .saim_decoder import SAIMDecoder

__all__ = ['BaseDecoder', 'SAIMDecoder']
