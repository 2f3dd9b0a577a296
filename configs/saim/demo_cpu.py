# CPU demo: SAIM pre-training of a tiny ViT (4 blocks, width 96, 4x4 patches on 32x32 crops) on the
# synthetic images of tools/misc/make_demo_data.py (timings: docs/benchmarks.md):
#   python tools/misc/make_demo_data.py data/demo && python tools/train.py configs/saim/demo_cpu.py
# Everything else (decoder design, Gaussian target, optimiser, weight-decay rules, logging) is the paper's
# recipe inherited from vitb_800e.py.
_base_ = ['./vitb_800e.py']

embed_dims, depth, heads, patch, img = 96, 4, 3, 4, 32
model = dict(
    backbone=dict(
        arch=dict(_delete_=True, embed_dims=embed_dims, num_layers=depth, num_heads=heads,
                  feedforward_channels=4 * embed_dims),
        img_size=img,
        patch_size=patch),
    neck=dict(num_layers=depth),
    head=dict(patch_size=patch, kernel_size=3, sigma=1.0))

train_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(
        type='RandomResizedCrop',
        scale=img,
        crop_ratio_range=(0.67, 1.0),
        aspect_ratio_range=(3. / 4., 4. / 3.),
        backend='pillow',
        interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackInputs')
]
train_dataloader = dict(
    batch_size=32,
    num_workers=1,
    # kept for speed (no worker start per epoch): the demo starts afresh (resume=False). For an exact
    # resume, train with --no-persistent-workers (docs/reliability.md).
    persistent_workers=True,
    pin_memory=False,
    dataset=dict(
        _delete_=True,
        type='CustomDataset',
        data_root='data/demo',
        data_prefix='train',
        with_label=False,
        pipeline=train_pipeline))

max_epochs = 30
warmup_epochs = 2
# fp32 on the CPU: a plain OptimWrapper instead of the AmpOptimWrapper of the GPU recipe (same AdamW and
# weight-decay rules), with a larger lr for the small batch and short schedule.
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(lr=1e-3))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs, eta_min=0.0, by_epoch=True,
         begin=warmup_epochs, end=max_epochs, convert_to_iter_based=True)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=8),
    checkpoint=dict(interval=10, max_keep_ckpts=3, save_last=True))
env_cfg = dict(dist_cfg=dict(backend='gloo'))
work_dir = './work_dirs/demo_cpu'
resume = False  # a demo run starts afresh; the paper configs auto-resume
