# COCO Mask R-CNN fine-tuning of a SAIM ViT-B/16 (paper: 49.4 box AP / 44.0 mask AP with the 800-epoch
# model), Li et al. 2021 recipe: 1024^2 large-scale jitter, AdamW, drop path 0.1, 100 epochs, batch 64
# (8 GPUs x 8), step decay x0.1 at epochs 88 and 96, mixed precision.
#   tools/dist_train.sh configs/benchmarks/coco/mask-rcnn_saim-vitb_100e.py 8 \
#       --cfg-options model.backbone.init_cfg.checkpoint=work_dirs/vitb_800e/epoch_800.pth
_base_ = ['../../_base_/models/mask-rcnn_saim-vit-b_fpn.py', '../../_base_/datasets/coco_instance_lsj.py']
custom_imports = dict(imports=['saim_mm'], allow_failed_imports=False)
default_scope = 'mmdet'

model = dict(data_preprocessor=dict(batch_augments=[dict(type='BatchFixedSizePad', size=(1024, 1024))]))

max_epochs = 100
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=10)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(
    type='AmpOptimWrapper',
    loss_scale='dynamic',
    optimizer=dict(type='AdamW', lr=8e-5, betas=(0.9, 0.999), weight_decay=0.1),
    # no weight decay on norms, biases, position embedding and relative position biases
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        custom_keys={
            'backbone.pos_embed': dict(decay_mult=0.0),
            'backbone.cls_token': dict(decay_mult=0.0),
            'rel_pos_bias': dict(decay_mult=0.0),
        }))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=250),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[88, 96], gamma=0.1)
]
auto_scale_lr = dict(enable=False, base_batch_size=64)

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='mmpretrain.AtomicCheckpointHook', interval=10, max_keep_ckpts=3, save_last=True),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='DetVisualizationHook'))
custom_hooks = [dict(type='mmpretrain.NonFiniteLossHook')]  # stop at the first NaN/inf loss, before it is checkpointed
env_cfg = dict(cudnn_benchmark=False, mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
               dist_cfg=dict(backend='nccl'))
vis_backends = [dict(type='LocalVisBackend'), dict(type='TensorboardVisBackend')]
visualizer = dict(type='DetLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(type='LogProcessor', window_size=50, by_epoch=True)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0, diff_rank_seed=True)  # a fixed seed, as in the pre-training and ImageNet configs
