from .gaussian_pixel_loss import GaussianPixelLoss, gaussian_kernel
from .hog_loss import HOGLoss

__all__ = ['GaussianPixelLoss', 'HOGLoss', 'gaussian_kernel']
