from .saim import SAIM

__all__ = ['SAIM']
