# SAIM ViT-B/16, 800 epochs, with the authors' released recipe (qiy20/SAIM) where it differs from the paper
# (docs/recipes.md, "The authors' release"); vitb_800e.py is the paper's. Same model, data, schedule and
# total batch (2048: 8 GPUs x 256 here; theirs is 32 GPUs x 64, the same optimisation). Their warm-up
# starts from lr 0 instead of 1e-4 x lr: --cfg-options param_scheduler.0.start_factor=0.
#   tools/dist_train.sh configs/saim/vitb_800e_release.py 8
_base_ = ['./vitb_800e.py']

# their main_pretrain.py: RandomResizedCrop(224, scale=(0.2, 1.0), interpolation=3) (the paper: 0.67)
train_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(
        type='RandomResizedCrop',
        scale=224,
        crop_ratio_range=(0.2, 1.0),
        aspect_ratio_range=(3. / 4., 4. / 3.),
        backend='pillow',
        interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackInputs')
]
# their DataLoader(drop_last=True)
train_dataloader = dict(drop_last=True, dataset=dict(pipeline=train_pipeline))

optim_wrapper = dict(
    # their README's pre-training command: --weight_decay 0.5 (the paper and their default: 0.05)
    optimizer=dict(weight_decay=0.5),
    # timm's add_weight_decay: only 1-D parameters and biases are exempt, so the cls token is decayed
    paramwise_cfg=dict(custom_keys={'cls_token': dict(decay_mult=1.0)}))
