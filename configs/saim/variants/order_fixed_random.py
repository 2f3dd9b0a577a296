# One random permutation drawn at build time from the run's seed and kept for the whole run (saved in the
# checkpoint).
_base_ = ['../vitb_800e.py']
model = dict(order='fixed_random')
