# CPU demo of the linear probe on an intermediate block (vitb_linear_block8_90e.py): the linear-probe demo
# (linear_cpu.py) on the cls token of block index 2 (0-based: the third of the tiny ViT's 4 blocks, three
# quarters of the depth as block index 8 of ViT-B's 12):
#   python tools/train.py configs/benchmarks/demo/linear_block2_cpu.py \
#       --cfg-options model.backbone.init_cfg.checkpoint=work_dirs/demo_cpu/backbone.pth
_base_ = ['./linear_cpu.py']

model = dict(backbone=dict(out_indices=[2]))
work_dir = './work_dirs/demo_linear_block2_cpu'
