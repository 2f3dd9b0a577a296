# From the centre outwards, by distance to the image centre, the same for every image (SemAIM's centre-out
# idea, without its semantic guidance).
_base_ = ['../vitb_800e.py']
model = dict(order='centre_out')
