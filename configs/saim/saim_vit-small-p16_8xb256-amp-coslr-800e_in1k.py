# SAIM ViT-S/16 (mmpretrain's 'deit-small': width 384, 12 blocks, 6 heads), 800 epochs on ImageNet-1k.
# The ViT-B recipe of vitb_800e.py with a smaller encoder: 12 decoder blocks (= encoder depth) of the
# encoder's width, fp16 autocast, 8 GPUs x 256 = 2048 images per step.
#   tools/dist_train.sh configs/saim/saim_vit-small-p16_8xb256-amp-coslr-800e_in1k.py 8
_base_ = ['./vitb_800e.py']

model = dict(backbone=dict(arch='deit-small'))
