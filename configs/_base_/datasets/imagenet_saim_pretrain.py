# ImageNet-1k train split for SAIM pre-training: light augmentation (paper, "Pretraining Setup").
dataset_type = 'ImageNet'
data_root = 'data/imagenet/'

train_pipeline = [
    # mmcv's LoadImageFromFile whose errors name the file; grey/RGBA/CMYK images come out as 3 channels
    dict(type='CheckedLoadImageFromFile'),
    dict(
        type='RandomResizedCrop',
        scale=224,
        crop_ratio_range=(0.67, 1.0),
        aspect_ratio_range=(3. / 4., 4. / 3.),
        backend='pillow',
        interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackInputs')
]

train_dataloader = dict(
    batch_size=256,
    num_workers=10,
    pin_memory=True,
    # Exact resume: workers are started anew every epoch and seeded from the main RNG, which
    # ResumableRandomnessHook re-seeds per (seed, rank, epoch). Persistent workers would carry RNG states
    # across epochs that no checkpoint holds (the cost, a worker start per epoch, was 0.4 s per epoch in
    # the 2-core CPU demo).
    persistent_workers=False,
    worker_init_fn=dict(type='torch_seed_worker_init_fn'),
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type=dataset_type, data_root=data_root, split='train', pipeline=train_pipeline))
