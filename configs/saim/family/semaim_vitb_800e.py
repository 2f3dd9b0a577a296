# SemAIM-style pre-training (Song et al., AAAI 2024, arXiv 2312.10457) of a ViT-B/16 on ImageNet-1k:
# SAIM's two streams with the semantic-aware order (from the patch most similar to the cls token outwards,
# by grid distance, computed by the EMA teacher's encoder) and the EMA teacher's patch features as the
# target (L2 between L2-normalised prediction and feature). Recipe values from skyoux/SemAIM's README
# pre-training command and main_pretrain.py where they differ from vitb_800e.py: crop scale (0.2, 1),
# gradient clipping at 3. Every value and where it comes from: docs/recipes.md#the-autoregressive-family
#   tools/dist_train.sh configs/saim/family/semaim_vitb_800e.py 8
_base_ = ['../vitb_800e.py']

model = dict(
    # their --permutation_type attention_center --attention_type cls, from the EMA model (--use_ema_model)
    order=dict(_delete_=True, type='SemanticOrder', source='teacher'),
    head=dict(
        _delete_=True,
        type='FeatureTargetHead',
        patch_size=16,
        # engine_pretrain.py: EMA decay 0.999 -> 0.9999 (linear over 100 epochs, then constant); here the
        # student weight m = 1 - decay goes from 1e-3 to 1e-4 along a cosine over the whole run
        teacher=dict(type='EMATeacher', momentum=1e-3, end_momentum=1e-4),
        loss='normalized_l2'))

# their main_pretrain.py: RandomResizedCrop(224, scale=(0.2, 1.0), interpolation=3) (SAIM: 0.67)
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
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
optim_wrapper = dict(clip_grad=dict(max_norm=3.0))  # their README: --clip_grad 3
