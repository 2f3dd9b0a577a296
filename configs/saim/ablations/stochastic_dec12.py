# Table 3: stochastic order, separate 12-block decoder, no Gaussian smoothing (also the "Gaussian: none"
# row). Paper fine-tune top-1 (300 ep): 83.40
_base_ = ['../vitb_300e.py']
model = dict(head=dict(kernel_size=None))
