# SAIM ViT-L/16 (width 1024, 24 blocks, 16 heads), 800 epochs on ImageNet-1k: the recipe of vitb_800e.py
# (AdamW lr 2e-4 x 2048/256, betas (0.9, 0.95), wd 0.05, 30 warm-up epochs then cosine) with
# - a 24-block decoder (= encoder depth) of the encoder's width;
# - bf16 autocast (AmpOptimWrapper dtype='bfloat16'; fp16 for GPUs without bf16: dtype=None);
# - activation checkpointing of both streams (with_cp): 256 images per GPU then fit 80 GB
#   (tools/analysis/plan_memory.py; docs/scaling.md).
#   tools/dist_train.sh configs/saim/saim_vit-large-p16_8xb256-amp-coslr-800e_in1k.py 8
_base_ = ['./vitb_800e.py']

model = dict(
    backbone=dict(arch='l', with_cp=True),
    neck=dict(num_layers=24, with_cp=True))
optim_wrapper = dict(dtype='bfloat16')
