# The CPU demo (configs/saim/demo_cpu.py) as D-iGPT: the 8 x 8 patch grid in 2 x 2 segments of 4 x 4 patches
# in a random order, a 2-block decoder 4/3 as wide as the encoder with a linear head (D-iGPT's ViT-B: 1024
# for 768), and the patch features of a frozen teacher with the cosine loss
# (configs/saim/family/digpt_vitb_300e.py). The teacher is the encoder of the SAIM CPU demo, so train that
# first (docs/variants.md#the-autoregressive-family):
#   python tools/misc/make_demo_data.py data/demo
#   python tools/train.py configs/saim/demo_cpu.py             # writes work_dirs/demo_cpu/epoch_30.pth
#   python tools/train.py configs/saim/family/demo/digpt.py
_base_ = ['../../demo_cpu.py']

model = dict(
    order=dict(_delete_=True, type='RandomSegmentOrder', segment=(4, 4)),
    neck=dict(embed_dims=128, num_layers=2, num_heads=4, feedforward_channels=512, predictor='linear'),
    head=dict(
        _delete_=True,
        type='FeatureTargetHead',
        patch_size={{_base_.patch}},
        teacher=dict(
            type='PretrainedTeacher',
            model=dict(type='SAIMViT', arch={{_base_.model.backbone.arch}}, img_size={{_base_.img}},
                       patch_size={{_base_.patch}}),
            checkpoint='work_dirs/demo_cpu/epoch_30.pth',  # the backbone.* of the SAIM demo's last epoch
            block=-1),
        loss='cosine'))
work_dir = './work_dirs/family_demo_digpt'
