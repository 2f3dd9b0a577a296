# Raster order (row by row; AIM's order) with the paper's decoder; the ViT-iGPT-like baseline of Table 3 is
# ../ablations/raster_dec12.py (no Gaussian).
_base_ = ['../vitb_800e.py']
model = dict(order='raster')
