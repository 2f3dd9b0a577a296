from .gaussian_pixel_loss import GaussianPixelLoss, gaussian_kernel

__all__ = ['GaussianPixelLoss', 'gaussian_kernel']
