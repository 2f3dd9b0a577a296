# SAIM ViT-L/16 pre-training with DeepSpeed (mmengine's FlexibleRunner + DeepSpeedStrategy: ZeRO stage 1,
# bf16), otherwise saim_vit-large-p16_8xb256-amp-coslr-800e_in1k.py (activation checkpointing, total batch
# 2048, the same AdamW and weight-decay rules). Same launch:
#   tools/dist_train.sh configs/saim/saim_vit-large-p16_8xb256-ds-coslr-800e_in1k.py 8
_base_ = ['./saim_vit-large-p16_8xb256-amp-coslr-800e_in1k.py', '../_base_/strategies/deepspeed_zero1_bf16.py']

optim_wrapper = dict(
    _delete_=True,  # DeepSpeed does the mixed precision: no autocast dtype or loss scaler here
    type='DeepSpeedOptimWrapper',
    optimizer={{_base_.optim_wrapper.optimizer}},
    paramwise_cfg={{_base_.optim_wrapper.paramwise_cfg}})
