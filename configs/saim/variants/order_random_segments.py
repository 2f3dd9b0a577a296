# Random segments (as RandSAC): 2 x 2 tiles of patches in a random order per image; the 4 patches of a tile
# are predicted together from the earlier tiles (block-causal attention in both streams).
_base_ = ['../vitb_800e.py']
model = dict(order=dict(_delete_=True, type='RandomSegmentOrder', segment=(2, 2)))
