# ImageNet classifier for fine-tuning a SAIM ViT-B/16 (docs/recipes.md, "ImageNet fine-tuning"):
# mmpretrain's VisionTransformer (the same parameter names as SAIMViT), cls token after the final norm,
# drop path 0.1, a linear head, label smoothing 0.1, mixup 0.8 / cutmix 1.0. The encoder comes from a
# backbone-only checkpoint given on the command line:
#   --cfg-options model.backbone.init_cfg.checkpoint=PATH   (tools/model_converters/saim2backbone.py)
custom_imports = dict(imports=['saim_mm'], allow_failed_imports=False)

model = dict(
    type='ImageClassifier',
    data_preprocessor=dict(
        type='ClsDataPreprocessor',
        num_classes=1000,  # one-hot labels for mixup / cutmix
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        to_rgb=True),
    backbone=dict(
        type='VisionTransformer',
        arch='b',
        img_size=224,
        patch_size=16,
        drop_path_rate=0.1,
        out_type='cls_token',
        final_norm=True,
        init_cfg=dict(type='Pretrained', checkpoint=None, prefix='backbone.')),
    neck=None,
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=768,
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        init_cfg=[dict(type='TruncNormal', layer='Linear', std=2e-5)]),
    train_cfg=dict(augments=[dict(type='Mixup', alpha=0.8), dict(type='CutMix', alpha=1.0)]))
