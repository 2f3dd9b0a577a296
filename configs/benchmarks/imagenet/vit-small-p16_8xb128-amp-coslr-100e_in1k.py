# Fine-tune a SAIM ViT-S/16 ('deit-small', from configs/saim/saim_vit-small-p16_8xb256-amp-coslr-800e_in1k.py)
# on ImageNet-1k with the ViT-B recipe of vitb_finetune_100e.py (100 epochs, layer decay 0.65, drop path
# 0.1, total batch 1024, fp16); only the encoder size differs.
#   tools/dist_train.sh configs/benchmarks/imagenet/vit-small-p16_8xb128-amp-coslr-100e_in1k.py 8 \
#       --cfg-options model.backbone.init_cfg.checkpoint=work_dirs/saim_vit-small_backbone.pth
_base_ = ['./vitb_finetune_100e.py']

model = dict(backbone=dict(arch='deit-small'), head=dict(in_channels=384))
