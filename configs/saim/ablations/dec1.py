# Table 3: stochastic order, a single decoder block (reads the last encoder block), no Gaussian
# smoothing. Paper fine-tune top-1 (300 ep): 82.76
_base_ = ['../vitb_300e.py']
model = dict(neck=dict(num_layers=1), head=dict(kernel_size=None))
