# Fine-tune a SAIM ViT-B/16 on ImageNet-1k (docs/recipes.md; paper: 83.6 top-1 from 300 epochs of SAIM,
# 83.9 from 800). 8 GPUs x 128 = 1024 images per step:
#   tools/dist_train.sh configs/benchmarks/imagenet/vitb_finetune_100e.py 8 \
#       --cfg-options model.backbone.init_cfg.checkpoint=work_dirs/saim_vitb_800e_backbone.pth
_base_ = [
    '../../_base_/models/vit-base-p16_saim-finetune.py',
    '../../_base_/datasets/imagenet_saim_finetune.py',
    '../../_base_/imagenet_benchmark_runtime.py',
]

max_epochs = 100
warmup_epochs = 20
base_lr = 5e-4  # per 256 images

optim_wrapper = dict(
    type='AmpOptimWrapper',
    optimizer=dict(type='AdamW', lr=base_lr * 1024 / 256, betas=(0.9, 0.999), weight_decay=0.05),
    # layer-wise lr decay: block i (0-based) of 12 gets lr * 0.65^(12 - i), the embeddings 0.65^13, the
    # final norm and the head 1;
    # no weight decay on norms, biases, the cls token and the position embedding
    constructor='LearningRateDecayOptimWrapperConstructor',
    paramwise_cfg=dict(
        layer_decay_rate=0.65,
        flat_decay_mult=0.0,  # every 1-D parameter: norms and biases
        custom_keys={
            '.cls_token': dict(decay_mult=0.0),
            '.pos_embed': dict(decay_mult=0.0),
        }))

param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs, eta_min=1e-6, by_epoch=True,
         begin=warmup_epochs, end=max_epochs, convert_to_iter_based=True)
]

train_cfg = dict(max_epochs=max_epochs)
default_hooks = dict(logger=dict(interval=100))
auto_scale_lr = dict(base_batch_size=1024, enable=False)
