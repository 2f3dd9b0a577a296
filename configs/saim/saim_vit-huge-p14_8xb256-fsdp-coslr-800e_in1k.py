# SAIM ViT-H/14 pre-training with FSDP (mmengine's FlexibleRunner + FSDPStrategy, full sharding),
# otherwise saim_vit-huge-p14_8xb256-amp-coslr-800e_in1k.py. Same launch:
#   tools/dist_train.sh configs/saim/saim_vit-huge-p14_8xb256-fsdp-coslr-800e_in1k.py 8
_base_ = ['./saim_vit-huge-p14_8xb256-amp-coslr-800e_in1k.py', '../_base_/strategies/fsdp_full_shard.py']

# one FSDP unit per transformer block: a ViT-H block holds 19.7 M parameters, its MLP 13.1 M
strategy = dict(model_wrapper=dict(auto_wrap_policy=dict(min_num_params=int(1.5e7))))
optim_wrapper = dict(use_fsdp=True)
