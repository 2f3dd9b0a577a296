# Partial prediction (as XLNet trains): the query stream runs for the last half of each order only, and the
# loss is over those patches; the content stream still sees every patch. Beyond the paper.
_base_ = ['../vitb_800e.py']
model = dict(neck=dict(predict_ratio=1 / 2))
