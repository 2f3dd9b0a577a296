# Linear probe of a frozen SAIM ViT-B/16 on ImageNet-1k (DESIGN §4; paper: 58.5 top-1 from 300 epochs of
# SAIM, 62.5 from 800). 8 GPUs x 2048 = 16384 images per step:
#   tools/dist_train.sh configs/benchmarks/imagenet/vitb_linear_90e.py 8 \
#       --cfg-options model.backbone.init_cfg.checkpoint=work_dirs/saim_vitb_800e_backbone.pth
_base_ = [
    '../../_base_/models/vit-base-p16_saim-linear.py',
    '../../_base_/datasets/imagenet_saim_linear.py',
    'mmpretrain::_base_/default_runtime.py',
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

train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=1)
val_cfg = dict()
test_cfg = dict()

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='AtomicCheckpointHook', interval=1, max_keep_ckpts=3, save_best='auto'))
custom_hooks = [
    dict(type='PretrainedInitCheckHook'),  # a clear error when no pre-trained checkpoint is given
    dict(type='NonFiniteLossHook'),
]
vis_backends = [dict(type='LocalVisBackend'), dict(type='TensorboardVisBackend')]
visualizer = dict(type='UniversalVisualizer', vis_backends=vis_backends)
randomness = dict(seed=0, diff_rank_seed=True)
auto_scale_lr = dict(base_batch_size=batch_size, enable=False)
