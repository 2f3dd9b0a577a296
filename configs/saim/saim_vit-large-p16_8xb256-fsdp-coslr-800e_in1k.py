# SAIM ViT-L/16 pre-training with FSDP (mmengine's FlexibleRunner + FSDPStrategy, full sharding),
# otherwise saim_vit-large-p16_8xb256-amp-coslr-800e_in1k.py (bf16 autocast, activation checkpointing,
# total batch 2048). Same launch:
#   tools/dist_train.sh configs/saim/saim_vit-large-p16_8xb256-fsdp-coslr-800e_in1k.py 8
_base_ = ['./saim_vit-large-p16_8xb256-amp-coslr-800e_in1k.py', '../_base_/strategies/fsdp_full_shard.py']

# one FSDP unit per transformer block: a ViT-L block holds 12.6 M parameters, its MLP 8.4 M
strategy = dict(model_wrapper=dict(auto_wrap_policy=dict(min_num_params=int(1e7))))
optim_wrapper = dict(use_fsdp=True)
