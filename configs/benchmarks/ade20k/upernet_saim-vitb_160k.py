# ADE20K UperNet fine-tuning of a SAIM ViT-B/16 (paper: 47.8 mIoU with the 800-epoch model), BEiT recipe:
# 512^2 crops, AdamW lr 1e-4 with layer-wise lr decay 0.65, weight decay 0.05, 1500-iteration linear warm-up
# then poly, 160k iterations, batch 16 (8 GPUs x 2), sliding-window test (512^2, stride 341), mixed precision.
#   tools/dist_train.sh configs/benchmarks/ade20k/upernet_saim-vitb_160k.py 8 \
#       --cfg-options model.backbone.init_cfg.checkpoint=work_dirs/vitb_800e/epoch_800.pth
_base_ = ['../../_base_/models/upernet_saim-vit-b.py', '../../_base_/datasets/ade20k.py']
custom_imports = dict(imports=['saim_mm'], allow_failed_imports=False)
default_scope = 'mmseg'

max_iters = 160000
warmup_iters = 1500
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=16000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(
    type='AmpOptimWrapper',
    loss_scale='dynamic',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    # mmpretrain's layer-wise lr decay, with the depth read from model.backbone (SAIMDenseViT):
    # lr of backbone.layers.i = lr * 0.65 ** (12 - i); patch/position embedding lr * 0.65 ** 13
    constructor='mmpretrain.BackboneLayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(
        layer_decay_rate=0.65,
        flat_decay_mult=0.0,  # no weight decay on norms and biases
        custom_keys={
            'backbone.pos_embed': dict(decay_mult=0.0),
            'backbone.cls_token': dict(decay_mult=0.0),
            'rel_pos_bias': dict(decay_mult=0.0),
        }))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=warmup_iters),
    dict(type='PolyLR', eta_min=0.0, power=1.0, by_epoch=False, begin=warmup_iters, end=max_iters)
]
auto_scale_lr = dict(enable=False, base_batch_size=16)

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='mmpretrain.AtomicCheckpointHook', by_epoch=False, interval=16000, max_keep_ckpts=3, save_last=True),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
custom_hooks = [dict(type='mmpretrain.NonFiniteLossHook')]  # stop at the first NaN/inf loss, before it is checkpointed
env_cfg = dict(cudnn_benchmark=True, mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
               dist_cfg=dict(backend='nccl'))
vis_backends = [dict(type='LocalVisBackend'), dict(type='TensorboardVisBackend')]
visualizer = dict(type='SegLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(by_epoch=False)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0, diff_rank_seed=True)  # a fixed seed, as in the pre-training and ImageNet configs
