# The CPU demo with a narrow decoder: 64 wide (the encoder is 96), 3 blocks reading encoder blocks 2, 3, 4.
_base_ = ['../../demo_cpu.py']
model = dict(neck=dict(embed_dims=64, num_layers=3, num_heads=2, feedforward_channels=256, context_layers=[2, 3, 4]))
