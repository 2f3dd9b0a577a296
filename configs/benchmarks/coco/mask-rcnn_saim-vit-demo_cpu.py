# CPU demo of the COCO recipe: the tiny ViT of configs/saim/demo_cpu.py (4 blocks, width 96, 4x4 patches)
# in the same Mask R-CNN (pyramid neck, FPN, window + global attention, relative position bias), on the
# synthetic set of tools/misc/make_coco_demo.py (64-pixel images, 3 classes):
#   python tools/misc/make_coco_demo.py data/coco_demo
#   python tools/train.py configs/benchmarks/coco/mask-rcnn_saim-vit-demo_cpu.py \
#       --cfg-options model.backbone.init_cfg.checkpoint=work_dirs/demo_cpu/epoch_30.pth
_base_ = ['./mask-rcnn_saim-vitb_100e.py']

embed_dims, depth, heads, patch = 96, 4, 3, 4
image_size = (64, 64)
classes = ('disc', 'square', 'triangle')
strides = [1, 2, 4, 8]  # patch 4: pyramid strides 4/4, 4/2, 4, 8
norm_cfg = dict(type='BN', requires_grad=True)  # one process on the CPU: no SyncBN
model = dict(
    data_preprocessor=dict(batch_augments=[dict(type='BatchFixedSizePad', size=image_size)]),
    backbone=dict(
        arch=dict(_delete_=True, embed_dims=embed_dims, num_layers=depth, num_heads=heads,
                  feedforward_channels=4 * embed_dims),
        img_size=image_size,
        patch_size=patch,
        out_indices=[0, 1, 2, 3],
        window_size=4,
        global_attn_indexes=[1, 3]),
    neck=[
        dict(type='mmpretrain.ViTPyramidNeck', in_channels=embed_dims, scales=(4, 2, 1, 0.5), norm_cfg=norm_cfg),
        dict(type='FPN', in_channels=[embed_dims] * 4, out_channels=32, num_outs=5, norm_cfg=norm_cfg),
    ],
    rpn_head=dict(in_channels=32, feat_channels=32, anchor_generator=dict(strides=strides + [16])),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=32, featmap_strides=strides),
        bbox_head=dict(in_channels=32, conv_out_channels=32, fc_out_channels=64, num_classes=len(classes),
                       norm_cfg=norm_cfg),
        mask_roi_extractor=dict(out_channels=32, featmap_strides=strides),
        mask_head=dict(in_channels=32, conv_out_channels=32, num_classes=len(classes), norm_cfg=norm_cfg)),
    train_cfg=dict(rpn_proposal=dict(nms_pre=200, max_per_img=50), rcnn=dict(sampler=dict(num=32))),
    test_cfg=dict(rpn=dict(nms_pre=200, max_per_img=50), rcnn=dict(max_per_img=20)))

data_root = 'data/coco_demo/'
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomResize', scale=image_size, ratio_range=(0.5, 1.5), keep_ratio=True),
    dict(type='RandomCrop', crop_type='absolute_range', crop_size=image_size, recompute_bbox=True,
         allow_negative_crop=True),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1e-2, 1e-2)),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=dict(classes=classes), filter_cfg=dict(min_size=8),
                 pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=dict(classes=classes), pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator

max_epochs = 24
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
optim_wrapper = dict(_delete_=True, type='OptimWrapper',
                     optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.1),
                     paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0,
                                        custom_keys={'backbone.pos_embed': dict(decay_mult=0.0),
                                                     'rel_pos_bias': dict(decay_mult=0.0)}))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=4),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[max_epochs - 4], gamma=0.1)
]
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=max_epochs, max_keep_ckpts=1))
env_cfg = dict(dist_cfg=dict(backend='gloo'))
# deterministic kernels: with the seed alone, two CPU runs of the Mask R-CNN demo with 2 threads drifted apart
# (box AP 5.4 vs 1.8 from the same checkpoint); with them, runs repeat exactly
randomness = dict(deterministic=True)
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(vis_backends=vis_backends)
work_dir = './work_dirs/mask-rcnn_saim-vit-demo_cpu'
