# SAIM ViT-B/16, 800 epochs on ImageNet-1k: the paper's main run (83.9 fine-tune, 62.5 linear).
# 8 GPUs x 256 images = 2048 total batch:  tools/dist_train.sh configs/saim/vitb_800e.py 8
# Fewer GPUs: keep the total batch with --cfg-options optim_wrapper.accumulative_counts=K, or use
# --auto-scale-lr to scale the lr linearly with the batch actually used.
_base_ = [
    '../_base_/models/saim_vit-base-p16.py',
    '../_base_/datasets/imagenet_saim_pretrain.py',
    'mmpretrain::_base_/default_runtime.py',
]

max_epochs = 800
warmup_epochs = 30
base_lr = 2e-4  # per 256 images

optim_wrapper = dict(
    type='AmpOptimWrapper',  # fp16 autocast, dynamic loss scale
    optimizer=dict(type='AdamW', lr=base_lr * 2048 / 256, betas=(0.9, 0.95), weight_decay=0.05),
    # no weight decay on norms, biases, the cls token and the position embedding
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        custom_keys={
            'cls_token': dict(decay_mult=0.0),
            'pos_embed': dict(decay_mult=0.0),
        }))

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
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    # CheckpointHook that writes to a temp file and renames, updates last_checkpoint atomically, deletes
    # old checkpoints only after the new one is complete, and never saves non-finite weights
    checkpoint=dict(type='AtomicCheckpointHook', interval=1, max_keep_ckpts=3, save_last=True))
custom_hooks = [
    dict(type='ResumableRandomnessHook'),  # per-(seed, rank, epoch) RNG streams: exact resume
    dict(type='NonFiniteLossHook'),  # stop at the first NaN/inf loss, before it is checkpointed
    dict(type='PlainParamGroupsHook'),  # plain-dict optimiser groups, which compile = True needs
]
vis_backends = [dict(type='LocalVisBackend'), dict(type='TensorboardVisBackend')]
visualizer = dict(type='UniversalVisualizer', vis_backends=vis_backends)
env_cfg = dict(dist_cfg=dict(backend='nccl'))

randomness = dict(seed=0, diff_rank_seed=True)  # ranks draw different orders and augmentations
resume = True  # auto-resume from the latest checkpoint in the work dir
auto_scale_lr = dict(base_batch_size=2048, enable=False)
compile = False  # True (or a dict of torch.compile options) compiles the train step (mmengine)
