# Partial prediction of the last 1/6 of each order (XLNet's K = 6): 33 of 196 queries per image.
_base_ = ['../vitb_800e.py']
model = dict(neck=dict(predict_ratio=1 / 6))
