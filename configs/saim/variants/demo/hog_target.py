# The CPU demo with HOG targets: 2 x 2 cells of 2 pixels per 4 x 4 patch, 3 channels, 9 bins (108 values).
_base_ = ['../../demo_cpu.py']
model = dict(head=dict(_delete_=True, type='HOGLoss', patch_size=4, nbins=9, pool=2, gaussian_window=16))
