# Table 3, ViT-iGPT: raster order, no query stream (decoder depth 0), no Gaussian smoothing.
# Paper fine-tune top-1 (300 ep): 82.70
_base_ = ['../vitb_300e.py']
model = dict(order='raster', neck=dict(num_layers=0), head=dict(kernel_size=None))
