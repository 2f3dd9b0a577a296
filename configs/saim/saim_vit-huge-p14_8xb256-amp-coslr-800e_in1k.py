# SAIM ViT-H/14 (width 1280, 32 blocks, 16 heads; 16 x 16 patches of 14 x 14 pixels at 224^2), 800 epochs
# on ImageNet-1k: the ViT-L recipe (saim_vit-large-p16_...py: bf16, activation checkpointing) with a
# 32-block decoder (= encoder depth) and 14 x 14 targets.
#   tools/dist_train.sh configs/saim/saim_vit-huge-p14_8xb256-amp-coslr-800e_in1k.py 8
_base_ = ['./saim_vit-large-p16_8xb256-amp-coslr-800e_in1k.py']

patch = 14
model = dict(
    backbone=dict(arch='h', patch_size=patch),
    neck=dict(num_layers=32),
    head=dict(patch_size=patch))
