from .saim_vit import SAIMViT

__all__ = ['SAIMViT']
