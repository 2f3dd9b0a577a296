# The CPU demo (configs/saim/demo_cpu.py) with partial prediction of the last 1/6 of each order
# (tools/analysis/small_study.py --configs ...).
_base_ = ['../../demo_cpu.py']
model = dict(neck=dict(predict_ratio=1 / 6))
