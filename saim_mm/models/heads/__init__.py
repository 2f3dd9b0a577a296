from .attentive_probe_head import AttentiveProbeHead
from .gaussian_pixel_loss import GaussianPixelLoss, gaussian_kernel
from .hog_loss import HOGLoss

__all__ = ['AttentiveProbeHead', 'GaussianPixelLoss', 'HOGLoss', 'gaussian_kernel']
