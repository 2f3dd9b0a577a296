# Fine-tune a SAIM ViT-H/14 (from configs/saim/saim_vit-huge-p14_8xb256-amp-coslr-800e_in1k.py) on
# ImageNet-1k at 224^2 with MAE's ViT-H recipe: that of vit-large-p16_8xb128-amp-coslr-50e_in1k.py (50
# epochs, lr 1e-3 x 1024/256, layer decay 0.75, bf16) with drop path 0.3.
#   tools/dist_train.sh configs/benchmarks/imagenet/vit-huge-p14_8xb128-amp-coslr-50e_in1k.py 8 \
#       --cfg-options model.backbone.init_cfg.checkpoint=work_dirs/saim_vit-huge_backbone.pth
_base_ = ['./vit-large-p16_8xb128-amp-coslr-50e_in1k.py']

model = dict(backbone=dict(arch='h', patch_size=14, drop_path_rate=0.3), head=dict(in_channels=1280))
