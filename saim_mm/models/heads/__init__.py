"""Target heads (what SAIM predicts and its loss: ``base_target_head.py`` states the contract; pixels, HOG,
a teacher's features) and the attentive probe."""
from .attentive_probe_head import AttentiveProbeHead
from .base_target_head import BaseTargetHead
from .feature_target_head import FeatureTargetHead
from .gaussian_pixel_loss import GaussianPixelLoss, gaussian_kernel
from .hog_loss import HOGLoss

__all__ = ['AttentiveProbeHead', 'BaseTargetHead', 'FeatureTargetHead', 'GaussianPixelLoss', 'HOGLoss',
           'gaussian_kernel']
