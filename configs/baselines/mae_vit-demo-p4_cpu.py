# MAE, mmpretrain's own algorithm (MAE + MAEViT + MAEPretrainDecoder + MAEPretrainHead, unchanged), at the
# size of the SAIM CPU demo: the baseline row of tools/analysis/small_study.py.
#   python tools/misc/make_demo_data.py data/demo && python tools/train.py configs/baselines/mae_vit-demo-p4_cpu.py
# The model is mmpretrain's _base_/models/mae_vit-base-p16.py with only its sizes chosen: the encoder of the
# SAIM demo (width 96, 4 blocks, 3 heads, 4x4 patches on 32x32 crops), mask ratio 0.75 and the norm-pix
# loss of the MAE paper, and a small decoder (width 64, 2 blocks, 2 heads). Everything else is inherited
# from configs/saim/demo_cpu.py, so MAE sees the same images, augmentation, batch and epochs as SAIM, with
# the same AdamW (MAE's betas and weight decay; no decay on norms, biases, tokens and embeddings) and
# schedule.
_base_ = ['../saim/demo_cpu.py']

embed_dims, depth, heads, patch, img = 96, 4, 3, 4, 32
decoder_dims, decoder_depth, decoder_heads = 64, 2, 2
model = dict(
    _delete_=True,
    type='MAE',
    data_preprocessor={{_base_.model.data_preprocessor}},  # the SAIM demo's normalisation
    backbone=dict(
        type='MAEViT',
        arch=dict(embed_dims=embed_dims, num_layers=depth, num_heads=heads, feedforward_channels=4 * embed_dims),
        img_size=img,
        patch_size=patch,
        mask_ratio=0.75),
    neck=dict(
        type='MAEPretrainDecoder',
        num_patches=(img // patch)**2,
        patch_size=patch,
        in_chans=3,
        embed_dim=embed_dims,
        decoder_embed_dim=decoder_dims,
        decoder_depth=decoder_depth,
        decoder_num_heads=decoder_heads,
        mlp_ratio=4.),
    head=dict(
        type='MAEPretrainHead',
        norm_pix=True,
        patch_size=patch,
        loss=dict(type='PixelReconstructionLoss', criterion='L2')),
    init_cfg=[
        dict(type='Xavier', layer='Linear', distribution='uniform'),
        dict(type='Constant', layer='LayerNorm', val=1.0, bias=0.0)
    ])

optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'mask_token': dict(decay_mult=0.0)}))
work_dir = './work_dirs/mae_vit-demo-p4_cpu'
