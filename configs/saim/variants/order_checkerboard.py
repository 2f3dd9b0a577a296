# The black squares of a checkerboard first, then the white ones, the same for every image (AIM studies
# checkerboard orders).
_base_ = ['../vitb_800e.py']
model = dict(order='checkerboard')
