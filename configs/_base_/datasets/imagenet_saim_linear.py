# ImageNet-1k for linear probing: weak augmentation (RandomResizedCrop 224 bicubic, flip); test: short edge
# 256, centre crop 224.
_base_ = ['./imagenet_saim_finetune.py']

train_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224, backend='pillow', interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs')
]
train_dataloader = dict(
    batch_size=2048,  # x 8 GPUs = 16384, the linear-probe batch of MAE, which the paper follows
    dataset=dict(pipeline=train_pipeline))
