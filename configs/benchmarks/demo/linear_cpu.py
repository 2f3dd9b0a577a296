# CPU demo of linear probing: the recipe of vitb_linear_90e.py (frozen encoder, cls token after the final
# norm, BatchNorm without affine + Linear, LARS, weight decay 0) on the tiny ViT of configs/saim/demo_cpu.py
# and the 4-class images of tools/misc/make_demo_data.py:
#   python tools/train.py configs/benchmarks/demo/linear_cpu.py \
#       --cfg-options model.backbone.init_cfg.checkpoint=work_dirs/demo_cpu/backbone.pth
_base_ = ['../imagenet/vitb_linear_90e.py']

embed_dims, depth, heads, patch, img, num_classes = 96, 4, 3, 4, 32, 4
model = dict(
    data_preprocessor=dict(num_classes=num_classes),
    backbone=dict(
        arch=dict(_delete_=True, embed_dims=embed_dims, num_layers=depth, num_heads=heads,
                  feedforward_channels=4 * embed_dims),
        img_size=img,
        patch_size=patch,
        frozen_stages=depth),
    neck=dict(input_features=embed_dims),
    head=dict(num_classes=num_classes, in_channels=embed_dims))

data_root = 'data/demo'
train_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=img, backend='pillow', interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs')
]
test_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(type='ResizeEdge', scale=36, edge='short', backend='pillow', interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=img),
    dict(type='PackInputs')
]
train_dataloader = dict(
    batch_size=32,
    num_workers=1,
    pin_memory=False,
    dataset=dict(_delete_=True, type='CustomDataset', data_root=data_root, data_prefix='train',
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=64,
    num_workers=1,
    pin_memory=False,
    dataset=dict(_delete_=True, type='CustomDataset', data_root=data_root, data_prefix='val',
                 pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator

max_epochs = 90
warmup_epochs = 10
# LARS scales each step by the trust ratio ||w|| / ||grad||, so the step of the head is lr * eta * ||w||
# whatever the batch: lr 0.1 * 32 / 256 barely moves it (measured: top-1 at chance, 26.6 %, after 30 epochs).
# The demo keeps the absolute lr of the ImageNet recipe (0.1 * 16384 / 256 = 6.4).
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(lr=0.1 * 16384 / 256))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs, eta_min=0.0, by_epoch=True,
         begin=warmup_epochs, end=max_epochs, convert_to_iter_based=True)
]
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
default_hooks = dict(
    logger=dict(interval=8),
    checkpoint=dict(interval=max_epochs, max_keep_ckpts=1, save_best=None))
env_cfg = dict(dist_cfg=dict(backend='gloo'))
work_dir = './work_dirs/demo_linear_cpu'
