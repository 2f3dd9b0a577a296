# Runtime shared by the ImageNet fine-tuning and linear-probing configs: mmpretrain's default runtime with
# saim_mm's guards (a clear error when no pre-trained checkpoint is given, atomic checkpoints, a stop at the
# first non-finite loss), TensorBoard scalars, validation every epoch and per-rank seeds.
_base_ = ['mmpretrain::_base_/default_runtime.py']

train_cfg = dict(by_epoch=True, val_interval=1)
val_cfg = dict()
test_cfg = dict()

default_hooks = dict(
    checkpoint=dict(type='AtomicCheckpointHook', interval=1, max_keep_ckpts=3, save_best='auto'))
custom_hooks = [
    dict(type='PretrainedInitCheckHook'),  # a clear error when no pre-trained checkpoint is given
    dict(type='NonFiniteLossHook'),
]
vis_backends = [dict(type='LocalVisBackend'), dict(type='TensorboardVisBackend')]
visualizer = dict(type='UniversalVisualizer', vis_backends=vis_backends)
randomness = dict(seed=0, diff_rank_seed=True)
