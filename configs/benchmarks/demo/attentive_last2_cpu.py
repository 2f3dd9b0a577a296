# CPU demo of the layer-averaged attentive probe (vitb_attentive_last6_90e.py): the attentive-probe demo
# (attentive_cpu.py) on the average of the raw outputs of the last 2 of the tiny ViT's 4 blocks (the same
# half of the depth as ViT-B's last 6 of 12), without the final norm, cls token dropped by the head:
#   python tools/train.py configs/benchmarks/demo/attentive_last2_cpu.py \
#       --cfg-options model.backbone.init_cfg.checkpoint=work_dirs/demo_cpu/backbone.pth
_base_ = ['./attentive_cpu.py']

num_blocks = 2
model = dict(
    backbone=dict(out_type='raw', out_indices=list(range(4 - num_blocks, 4)), final_norm=False),
    neck=dict(_delete_=True, type='BlockAverageNeck', num_inputs=num_blocks),
    head=dict(num_extra_tokens=1))
work_dir = './work_dirs/demo_attentive_last2_cpu'
