# Table 3: raster order, separate 12-block decoder, no Gaussian smoothing.
# Paper fine-tune top-1 (300 ep): 82.76
_base_ = ['../vitb_300e.py']
model = dict(order='raster', head=dict(kernel_size=None))
