# The CPU demo with random segments: 2 x 2 tiles of the 8 x 8 patch grid in random order, predicted together.
_base_ = ['../../demo_cpu.py']
model = dict(order=dict(_delete_=True, type='RandomSegmentOrder', segment=(2, 2)))
