from .saim_decoder import SAIMDecoder
from .vit_pyramid_neck import ViTPyramidNeck

__all__ = ['SAIMDecoder', 'ViTPyramidNeck']
