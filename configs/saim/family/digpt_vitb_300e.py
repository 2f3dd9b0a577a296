# D-iGPT-style pre-training (Ren et al., ICML 2024, arXiv 2312.02147) of a ViT-B/16 on ImageNet-1k: the
# 14 x 14 patch grid cut into 2 x 2 segments of 7 x 7 patches that come in a random order per image, the
# patches of a segment predicted together; the targets are a frozen CLIP ViT's patch features, with the
# cosine loss (2 - 2 cos). Decoder (2 blocks, 1024 wide, 32 heads, linear head) and recipe (300 epochs,
# 40 warm-up, batch 4096, base lr 1.5e-4 per 256 images, crop scale (0.2, 1)) from OliverRensu/D-iGPT
# (DiGPT_torch). Every value and where it comes from: docs/recipes.md#the-autoregressive-family
#
# The teacher's weights are NOT in this repository: download timm's OpenAI CLIP ViT-B/16 weights
# (model.safetensors of the Hugging Face repository timm/vit_base_patch16_clip_224.openai) to the path
# below, or give another with --cfg-options model.head.teacher.checkpoint=PATH. Without the file the model
# does not build (CheckpointNotFoundError naming the path). D-iGPT's own ViT-B run uses OpenCLIP ViT-H/14,
# whose 16 x 16 token grid at 224 pixels does not match the student's 14 x 14 (docs/recipes.md).
#   tools/dist_train.sh configs/saim/family/digpt_vitb_300e.py 8
_base_ = ['../vitb_800e.py']

max_epochs = 300
warmup_epochs = 40
base_lr = 1.5e-4  # per 256 images
total_batch = 4096  # 8 GPUs x 256 images x 2 accumulated steps (theirs: 32 GPUs x 64 x 2)

model = dict(
    order=dict(_delete_=True, type='RandomSegmentOrder', segment=(7, 7)),
    # models_digpt.py DiGPT_vit_base: 2 decoder blocks, 1024 wide, 32 heads, MLP ratio 4, linear head. Theirs
    # read a fusion of encoder blocks 6, 8, 10, 12 in every block; SAIMDecoder's blocks read blocks 6 and 12.
    neck=dict(embed_dims=1024, num_layers=2, num_heads=32, feedforward_channels=4096, predictor='linear'),
    head=dict(
        _delete_=True,
        type='FeatureTargetHead',
        patch_size=16,
        teacher=dict(
            type='PretrainedTeacher',
            model=dict(type='timm', model_name='vit_base_patch16_clip_224.openai'),
            checkpoint='data/teachers/vit_base_patch16_clip_224.openai.safetensors',
            block=-1),  # the last block, with the final norm (theirs: also CLIP's projection)
        loss='cosine'))

train_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(
        type='RandomResizedCrop',
        scale=224,
        crop_ratio_range=(0.2, 1.0),  # their main_pretrain.py
        aspect_ratio_range=(3. / 4., 4. / 3.),
        backend='pillow',
        interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
optim_wrapper = dict(optimizer=dict(lr=base_lr * total_batch / 256), accumulative_counts=2)
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-4,
        by_epoch=True,
        begin=0,
        end=warmup_epochs,
        convert_to_iter_based=True),
    dict(
        type='CosineAnnealingLR',
        T_max=max_epochs - warmup_epochs,
        eta_min=0.0,
        by_epoch=True,
        begin=warmup_epochs,
        end=max_epochs,
        convert_to_iter_based=True)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
auto_scale_lr = dict(base_batch_size=total_batch)
