# HOG features as the target (MaskFeat's target, mmpretrain's HOG code): 2 x 2 cells of 8 pixels x 3 colour
# channels x 9 orientation bins = 108 values per 16 x 16 patch; the decoder's output width follows the target.
_base_ = ['../vitb_800e.py']
model = dict(head=dict(_delete_=True, type='HOGLoss', patch_size=16, nbins=9, pool=8, gaussian_window=16))
