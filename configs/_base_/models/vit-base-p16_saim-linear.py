# Linear probe of a SAIM ViT-B/16 (docs/recipes.md, "ImageNet linear probe"): the whole encoder frozen
# (frozen_stages=12 freezes the patch embedding, cls token, position embedding, every block and the final
# norm), the cls token after the final norm, BatchNorm without affine parameters (ClsBatchNormNeck) and a
# Linear classifier.
#   --cfg-options model.backbone.init_cfg.checkpoint=PATH   (tools/model_converters/saim2backbone.py)
custom_imports = dict(imports=['saim_mm'], allow_failed_imports=False)

model = dict(
    type='ImageClassifier',
    data_preprocessor=dict(
        type='ClsDataPreprocessor',
        num_classes=1000,
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        to_rgb=True),
    backbone=dict(
        type='VisionTransformer',
        arch='b',
        img_size=224,
        patch_size=16,
        frozen_stages=12,
        out_type='cls_token',
        final_norm=True,
        init_cfg=dict(type='Pretrained', checkpoint=None, prefix='backbone.')),
    neck=dict(type='ClsBatchNormNeck', input_features=768),  # BatchNorm1d(affine=False, eps=1e-6)
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=768,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        init_cfg=[dict(type='TruncNormal', layer='Linear', std=0.01)]))
