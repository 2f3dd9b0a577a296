# mmengine's FlexibleRunner with FSDPStrategy: the weights, gradients and optimiser states are fully
# sharded over the GPUs. A config that adds this sets the size of an FSDP unit for its model
# (strategy.model_wrapper.auto_wrap_policy.min_num_params: one unit per transformer block) and
# optim_wrapper.use_fsdp=True (FSDP's sharded loss scaler, so that every rank skips the same steps).
runner_type = 'FlexibleRunner'
strategy = dict(
    type='FSDPStrategy',
    model_wrapper=dict(auto_wrap_policy=dict(type='torch.distributed.fsdp.wrap.size_based_auto_wrap_policy')),
    # checkpoints hold the whole (unsharded) model, gathered on rank 0: they load into the plain model
    # (strict=True), into tools/model_converters/saim2backbone.py and into the fine-tuning configs
    state_dict_cfg='full')
