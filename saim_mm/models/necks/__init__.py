"""Decoders: what turns the content stream into predictions (``base_decoder.py`` states the contract), and the
classifier neck of the layer-averaged probe."""
from .base_decoder import BaseDecoder
from .block_average_neck import BlockAverageNeck
from .mlp_prediction_neck import MLPPredictionNeck
from .saim_decoder import SAIMDecoder

__all__ = ['BaseDecoder', 'BlockAverageNeck', 'MLPPredictionNeck', 'SAIMDecoder']
