# AIM-style pre-training (El-Nouby et al., ICML 2024, arXiv 2401.08541) of a ViT-B/16 on ImageNet-1k:
# raster order; prefix-causal attention in the encoder (per sample a prefix of P patches, P uniform in
# [1, N - 1], attends bidirectionally, the rest causally; only the steps after the prefix enter the loss);
# no query stream: AIM's MLP head maps the encoder output after step t to patch t + 1; per-patch normalised
# pixels without Gaussian smoothing, L2. AIM has no ViT-B model, so the optimiser, schedule, batch and
# augmentation are SAIM's (vitb_800e.py). Unlike AIM's, saim_mm's encoder keeps its cls token.
# Every value and where it comes from: docs/recipes.md#the-autoregressive-family
#   tools/dist_train.sh configs/saim/family/aim_vitb_800e.py 8
_base_ = ['../vitb_800e.py']

model = dict(
    order='raster',
    backbone=dict(layer_cfgs=dict(attn_cfg=dict(type='PrefixCausalAttention'))),
    # apple/ml-l3m configs/aimv1/001_aim_v1_600M.yaml: 12 residual MLP blocks of width 2048, MLP ratio 4
    neck=dict(_delete_=True, type='MLPPredictionNeck', num_blocks=12, hidden_dims=2048, mlp_ratio=4),
    head=dict(kernel_size=None))  # norm-pix and L2 stay vitb_800e.py's
