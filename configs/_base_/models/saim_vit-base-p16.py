# SAIM with a ViT-B/16 encoder and the paper's best decoder (Table 3): stochastic order, 12 separate
# query blocks, MLP head, Gaussian k=9 sigma=1 targets, norm-pix, L2.
custom_imports = dict(imports=['saim_mm'], allow_failed_imports=False)

model = dict(
    type='SAIM',
    order='stochastic',
    data_preprocessor=dict(
        type='SelfSupDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        to_rgb=True),
    backbone=dict(type='SAIMViT', arch='b', img_size=224, patch_size=16),
    # width, heads, MLP width and patch size: the encoder's
    neck=dict(type='SAIMDecoder', num_layers=12, share_encoder_weights=False, predictor='mlp'),
    head=dict(
        type='GaussianPixelLoss',
        patch_size=16,
        kernel_size=9,
        sigma=1.0,
        norm_pix=True,
        loss=dict(type='PixelReconstructionLoss', criterion='L2')),
    init_cfg=[
        dict(type='Xavier', layer='Linear', distribution='uniform'),
        dict(type='Constant', layer='LayerNorm', val=1.0, bias=0.0)
    ])
