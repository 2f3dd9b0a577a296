# Attentive probe of a frozen SAIM ViT-B/16 on ImageNet-1k (AIM's protocol): the linear probe of
# vitb_linear_90e.py (encoder frozen, RandomResizedCrop 224 + flip, 10 warm-up epochs then cosine over 90)
# with the patch tokens after the final norm (out_type='featmap') instead of the cls token, and saim_mm's
# AttentiveProbeHead: one learned query cross-attending to them (12 heads, keys and values projected from the
# tokens), BatchNorm without affine parameters and a Linear classifier. 8 GPUs x 128 = 1024 images per step:
#   tools/dist_train.sh configs/benchmarks/imagenet/vitb_attentive_90e.py 8 \
#       --cfg-options model.backbone.init_cfg.checkpoint=work_dirs/saim_vitb_800e_backbone.pth
_base_ = ['./vitb_linear_90e.py']

model = dict(
    backbone=dict(out_type='featmap'),
    neck=None,
    head=dict(
        _delete_=True,
        type='AttentiveProbeHead',
        num_classes=1000,
        in_channels=768,
        num_heads=12,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))

# Our choice (AIM probes with AdamW; these values are not the paper's): AdamW with a batch of 1024 rather than
# the linear probe's 16384 (lr 1e-3 per 256 images would then be 0.064), lr 1e-3 per 256 images, weight
# decay 0.05.
batch_size = 128 * 8
base_lr = 1e-3  # per 256 images
train_dataloader = dict(batch_size=batch_size // 8)
optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='AdamW', lr=base_lr * batch_size / 256, betas=(0.9, 0.999),
                   weight_decay=0.05))
auto_scale_lr = dict(base_batch_size=batch_size)
