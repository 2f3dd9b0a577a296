# CPU demo of the ADE20K recipe: the tiny ViT of configs/saim/demo_cpu.py (4 blocks, width 96, 4x4 patches)
# in the same UperNet (x4, x2, x1, x1/2 pyramid, relative position bias, layer-wise lr decay 0.65, warm-up
# then poly, sliding-window test) on the synthetic set of tools/misc/make_ade20k_demo.py (64-pixel images,
# ADE20K labels):
#   python tools/misc/make_ade20k_demo.py data/ade_demo
#   python tools/train.py configs/benchmarks/ade20k/upernet_saim-vit-demo_cpu.py \
#       --cfg-options model.backbone.init_cfg.checkpoint=work_dirs/demo_cpu/epoch_30.pth
_base_ = ['./upernet_saim-vitb_160k.py']

embed_dims, depth, heads, patch = 96, 4, 3, 4
crop_size = (64, 64)
norm_cfg = dict(type='BN', requires_grad=True)  # one process on the CPU: no SyncBN
model = dict(
    data_preprocessor=dict(size=crop_size, test_cfg=dict(size_divisor=patch)),
    backbone=dict(
        arch=dict(_delete_=True, embed_dims=embed_dims, num_layers=depth, num_heads=heads,
                  feedforward_channels=4 * embed_dims),
        img_size=crop_size,
        patch_size=patch,
        out_indices=[0, 1, 2, 3]),
    neck=dict(in_channels=embed_dims, norm_cfg=norm_cfg),
    decode_head=dict(in_channels=[embed_dims] * 4, channels=32, norm_cfg=norm_cfg),
    auxiliary_head=dict(in_channels=embed_dims, channels=16, norm_cfg=norm_cfg),
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(43, 43)))

data_root = 'data/ade_demo'
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomResize', scale=(256, 64), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(256, 64), keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs')
]
train_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False,
                        dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(num_workers=0, persistent_workers=False,
                      dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader

max_iters = 120
warmup_iters = 10
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
# fp32 on the CPU: a plain OptimWrapper with the recipe's constructor, layer decay and decay rules
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.05),
    constructor='mmpretrain.BackboneLayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(
        layer_decay_rate=0.65,
        flat_decay_mult=0.0,
        custom_keys={
            'backbone.pos_embed': dict(decay_mult=0.0),
            'backbone.cls_token': dict(decay_mult=0.0),
            'rel_pos_bias': dict(decay_mult=0.0),
        }))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=warmup_iters),
    dict(type='PolyLR', eta_min=0.0, power=1.0, by_epoch=False, begin=warmup_iters, end=max_iters)
]
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=max_iters, max_keep_ckpts=1))
env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend='gloo'))
# deterministic kernels: with the seed alone, two CPU runs of the Mask R-CNN demo with 2 threads drifted apart
# (box AP 5.4 vs 1.8 from the same checkpoint); with them, runs repeat exactly
randomness = dict(deterministic=True)
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(vis_backends=vis_backends)
work_dir = './work_dirs/upernet_saim-vit-demo_cpu'
