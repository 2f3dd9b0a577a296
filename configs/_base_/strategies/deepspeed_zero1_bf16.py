# mmengine's FlexibleRunner with DeepSpeedStrategy: ZeRO stage 1 (optimiser states sharded over the GPUs)
# and DeepSpeed's bf16 (weights, activations and gradients in bf16, fp32 master weights in the optimiser).
# A config that adds this sets optim_wrapper to a DeepSpeedOptimWrapper. Needs deepspeed
# (pip install -r requirements/optional.txt).
runner_type = 'FlexibleRunner'
strategy = dict(
    type='DeepSpeedStrategy',
    bf16=dict(enabled=True),
    inputs_to_half=['inputs'],  # the images are cast to the weights' dtype (bf16)
    zero_optimization=dict(
        stage=1,
        allgather_partitions=True,
        reduce_scatter=True,
        allgather_bucket_size=50000000,
        reduce_bucket_size=50000000,
        overlap_comm=True,
        contiguous_gradients=True,
        cpu_offload=False))
