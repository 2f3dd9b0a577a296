from .loading import CheckedLoadImageFromFile, ImageLoadError

__all__ = ['CheckedLoadImageFromFile', 'ImageLoadError']
