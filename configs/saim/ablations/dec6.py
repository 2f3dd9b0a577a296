# Table 3: stochastic order, separate 6-block decoder (block j reads encoder block 2j), no Gaussian
# smoothing. Paper fine-tune top-1 (300 ep): 83.01
_base_ = ['../vitb_300e.py']
model = dict(neck=dict(num_layers=6), head=dict(kernel_size=None))
