# SAIM ViT-H/14 pre-training with DeepSpeed (mmengine's FlexibleRunner + DeepSpeedStrategy: ZeRO stage 1,
# bf16), otherwise saim_vit-huge-p14_8xb256-amp-coslr-800e_in1k.py. Same launch:
#   tools/dist_train.sh configs/saim/saim_vit-huge-p14_8xb256-ds-coslr-800e_in1k.py 8
_base_ = ['./saim_vit-huge-p14_8xb256-amp-coslr-800e_in1k.py', '../_base_/strategies/deepspeed_zero1_bf16.py']

optim_wrapper = dict(
    _delete_=True,  # DeepSpeed does the mixed precision: no autocast dtype or loss scaler here
    type='DeepSpeedOptimWrapper',
    optimizer={{_base_.optim_wrapper.optimizer}},
    paramwise_cfg={{_base_.optim_wrapper.paramwise_cfg}})
