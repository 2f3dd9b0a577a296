# The cheapest variant here: a narrow decoder of 4 blocks (width 512, 16 heads, as MAE's but half as deep)
# that reads encoder blocks 3, 6, 9 and 12, with partial prediction of the last 1/6 of each order. The
# decoder's cost is mostly its K/V (and context) projections of every content token, which partial
# prediction does not reduce; fewer reading blocks do.
_base_ = ['./narrow_512x8_partial_1_6.py']
model = dict(neck=dict(num_layers=4, context_layers=[3, 6, 9, 12]))
