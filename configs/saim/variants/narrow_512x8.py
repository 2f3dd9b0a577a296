# A narrow decoder as MAE's (width 512, 8 blocks, 16 heads): every block reads the content stream through
# its own 768 -> 512 projection; the queries start from a fixed 512-wide sin-cos table. 8 blocks do not
# divide the encoder's 12, so block j reads encoder block ceil(1.5 j).
_base_ = ['../vitb_800e.py']
model = dict(
    neck=dict(
        embed_dims=512,
        num_layers=8,
        num_heads=16,
        feedforward_channels=2048,
        context_layers=[2, 3, 5, 6, 8, 9, 11, 12]))
