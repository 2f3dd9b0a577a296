# The CPU demo (configs/saim/demo_cpu.py) as NEPA: causal encoder in raster order, no query stream, a linear
# head predicting the next patch's embedding (the encoder's own, without gradient) with the cosine loss
# (configs/saim/family/nepa_vitb_800e.py).
#   python tools/train.py configs/saim/family/demo/nepa.py
_base_ = ['../../demo_cpu.py']

model = dict(
    order='raster',
    neck=dict(num_layers=0, predictor='linear'),
    head=dict(
        _delete_=True,
        type='FeatureTargetHead',
        patch_size={{_base_.patch}},
        teacher=dict(type='PatchEmbedTeacher'),
        loss='cosine'))
work_dir = './work_dirs/family_demo_nepa'
