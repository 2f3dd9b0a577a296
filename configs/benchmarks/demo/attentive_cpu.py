# CPU demo of the attentive probe: the linear-probe demo (linear_cpu.py: tiny ViT of configs/saim/demo_cpu.py,
# frozen, 4-class images of tools/misc/make_demo_data.py, 90 epochs) with the head and optimiser of
# vitb_attentive_90e.py (patch tokens after the final norm, one learned query with 3 heads, BatchNorm without
# affine + Linear; AdamW):
#   python tools/train.py configs/benchmarks/demo/attentive_cpu.py \
#       --cfg-options model.backbone.init_cfg.checkpoint=work_dirs/demo_cpu/backbone.pth
_base_ = ['./linear_cpu.py']

model = dict(
    backbone=dict(out_type='featmap'),
    neck=None,
    head=dict(_delete_=True, type='AttentiveProbeHead', num_classes=4, in_channels=96, num_heads=3,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))
# fp32 on the CPU; the lr measured on the demo: top-1 53.1 % with lr 1e-3, 56.2 % with 3e-3 (the recipe's
# 1e-3 per 256 images would be 1.25e-4 at batch 32)
optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='AdamW', lr=3e-3, betas=(0.9, 0.999), weight_decay=0.05))
work_dir = './work_dirs/demo_attentive_cpu'
