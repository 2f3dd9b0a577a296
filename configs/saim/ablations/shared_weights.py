# Table 3: stochastic order, decoder blocks share the encoder's weights, no Gaussian smoothing.
# Paper fine-tune top-1 (300 ep): 83.02
_base_ = ['../vitb_300e.py']
model = dict(neck=dict(share_encoder_weights=True), head=dict(kernel_size=None))
