# Linear probe of a frozen SAIM ViT-B/16 on ImageNet-1k (docs/recipes.md; paper: 58.5 top-1 from 300
# epochs of SAIM, 62.5 from 800). 8 GPUs x 2048 = 16384 images per step:
#   tools/dist_train.sh configs/benchmarks/imagenet/vitb_linear_90e.py 8 \
#       --cfg-options model.backbone.init_cfg.checkpoint=work_dirs/saim_vitb_800e_backbone.pth
_base_ = [
    '../../_base_/models/vit-base-p16_saim-linear.py',
    '../../_base_/datasets/imagenet_saim_linear.py',
    '../../_base_/imagenet_benchmark_runtime.py',
]

max_epochs = 90
warmup_epochs = 10
batch_size = 2048 * 8
base_lr = 0.1  # per 256 images

optim_wrapper = dict(
    type='AmpOptimWrapper',
    optimizer=dict(type='LARS', lr=base_lr * batch_size / 256, momentum=0.9, weight_decay=0.0))

param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs, eta_min=0.0, by_epoch=True,
         begin=warmup_epochs, end=max_epochs, convert_to_iter_based=True)
]

train_cfg = dict(max_epochs=max_epochs)
default_hooks = dict(logger=dict(interval=10))
auto_scale_lr = dict(base_batch_size=batch_size, enable=False)
