# The CPU demo (configs/saim/demo_cpu.py) as AIM: raster order, prefix-causal encoder, AIM's MLP head
# (4 blocks like the demo's decoder, 128 wide: AIM-600M's head width over its encoder width, 2048 / 1536,
# at the demo's width 96), normalised pixels without smoothing (configs/saim/family/aim_vitb_800e.py).
#   python tools/train.py configs/saim/family/demo/aim.py
_base_ = ['../../demo_cpu.py']

model = dict(
    order='raster',
    backbone=dict(layer_cfgs=dict(attn_cfg=dict(type='PrefixCausalAttention'))),
    neck=dict(_delete_=True, type='MLPPredictionNeck', num_blocks=4, hidden_dims=128, mlp_ratio=4),
    head=dict(kernel_size=None))
work_dir = './work_dirs/family_demo_aim'
