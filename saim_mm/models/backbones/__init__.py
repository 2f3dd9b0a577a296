"""The encoder: the content stream in pre-training, a plain mmpretrain ViT when transferred."""
from .saim_vit import SAIMViT

__all__ = ['SAIMViT']
