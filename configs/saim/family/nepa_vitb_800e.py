# NEPA-style pre-training (Xu et al. 2025, arXiv 2512.16922) of a ViT-B/16 on ImageNet-1k: a causal encoder
# in raster order predicts the next patch's embedding (the encoder's own patch embedding, without gradient)
# with the cosine loss; no query stream, a linear head on the normalised content output. The NEPA
# recipe was not taken (its ViT-B schedule and its encoder changes, RoPE, LayerScale, QK-norm, are not
# here): the optimiser, schedule, batch and augmentation are SAIM's (vitb_800e.py).
# Every value and where it comes from: docs/recipes.md#the-autoregressive-family
#   tools/dist_train.sh configs/saim/family/nepa_vitb_800e.py 8
_base_ = ['../vitb_800e.py']

model = dict(
    order='raster',
    neck=dict(num_layers=0, predictor='linear'),
    head=dict(
        _delete_=True,
        type='FeatureTargetHead',
        patch_size=16,
        teacher=dict(type='PatchEmbedTeacher'),
        loss='cosine'))
