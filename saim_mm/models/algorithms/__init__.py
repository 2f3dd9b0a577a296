"""The SAIM algorithm: draws the order, runs the two streams and asks the head for the loss."""
from .saim import SAIM

__all__ = ['SAIM']
