# UperNet with a SAIM ViT-B/16 backbone, BEiT style: the outputs of blocks 4, 6, 8, 12 (indices 3, 5, 7, 11)
# go through a x4, x2, x1, x1/2 pyramid (ViTPyramidNeck) into UperNet; global attention in every block with
# the cls token, relative position bias (zero at start), drop path 0.1; auxiliary FCN head on the x1 level.
# The backbone loads the SAIM pre-training checkpoint (keys 'backbone.*'), given on the command line:
#   --cfg-options model.backbone.init_cfg.checkpoint=PATH
custom_imports = dict(imports=['saim_mm'], allow_failed_imports=False)

norm_cfg = dict(type='SyncBN', requires_grad=True)
vit_dims = 768
model = dict(
    type='EncoderDecoder',
    data_preprocessor=dict(
        type='SegDataPreProcessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_val=0,
        seg_pad_val=255,
        size=(512, 512),
        test_cfg=dict(size_divisor=16)),  # the ViT needs sides that the patch size divides
    backbone=dict(
        type='mmpretrain.SAIMDenseViT',
        arch='b',
        img_size=(512, 512),
        patch_size=16,
        out_indices=[3, 5, 7, 11],
        out_type='featmap',
        final_norm=False,
        use_rel_pos_bias=True,
        drop_path_rate=0.1,
        init_cfg=dict(type='Pretrained', checkpoint=None, prefix='backbone.')),
    neck=dict(type='mmpretrain.ViTPyramidNeck', in_channels=vit_dims, scales=(4, 2, 1, 0.5), norm_cfg=norm_cfg),
    decode_head=dict(
        type='UPerHead',
        in_channels=[vit_dims] * 4,
        in_index=[0, 1, 2, 3],
        pool_scales=(1, 2, 3, 6),
        channels=768,
        dropout_ratio=0.1,
        num_classes=150,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    auxiliary_head=dict(
        type='FCNHead',
        in_channels=vit_dims,
        in_index=2,
        channels=256,
        num_convs=1,
        concat_input=False,
        dropout_ratio=0.1,
        num_classes=150,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=0.4)),
    train_cfg=dict(),
    test_cfg=dict(mode='slide', crop_size=(512, 512), stride=(341, 341)))
