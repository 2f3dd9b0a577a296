# The narrow decoder (512 x 8) with partial prediction of the last 1/6 of each order.
_base_ = ['./narrow_512x8.py']
model = dict(neck=dict(predict_ratio=1 / 6))
