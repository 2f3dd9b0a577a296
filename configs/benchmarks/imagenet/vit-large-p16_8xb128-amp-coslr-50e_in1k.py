# Fine-tune a SAIM ViT-L/16 (from configs/saim/saim_vit-large-p16_8xb256-amp-coslr-800e_in1k.py) on
# ImageNet-1k with MAE's ViT-L recipe (mmpretrain's configs/mae/benchmarks): 50 epochs (5 warm-up, then
# cosine to 1e-6), AdamW lr 1e-3 x 1024/256, layer-wise lr decay 0.75, drop path 0.2; bf16 autocast.
# Everything else (cls token after the final norm, augmentation, mixup/cutmix, label smoothing, total batch
# 8 x 128 = 1024) is vitb_finetune_100e.py's.
#   tools/dist_train.sh configs/benchmarks/imagenet/vit-large-p16_8xb128-amp-coslr-50e_in1k.py 8 \
#       --cfg-options model.backbone.init_cfg.checkpoint=work_dirs/saim_vit-large_backbone.pth
_base_ = ['./vitb_finetune_100e.py']

max_epochs = 50
warmup_epochs = 5
base_lr = 1e-3  # per 256 images

model = dict(backbone=dict(arch='l', drop_path_rate=0.2), head=dict(in_channels=1024))
optim_wrapper = dict(
    dtype='bfloat16',
    optimizer=dict(lr=base_lr * 1024 / 256),
    paramwise_cfg=dict(layer_decay_rate=0.75))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs, eta_min=1e-6, by_epoch=True,
         begin=warmup_epochs, end=max_epochs, convert_to_iter_based=True)
]
train_cfg = dict(max_epochs=max_epochs)
