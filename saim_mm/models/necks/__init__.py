from .saim_decoder import SAIMDecoder

__all__ = ['SAIMDecoder']
