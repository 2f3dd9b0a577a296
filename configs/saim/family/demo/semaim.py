# The CPU demo (configs/saim/demo_cpu.py) as SemAIM: the semantic order computed by the EMA teacher's
# encoder and the EMA teacher's patch features as the target (configs/saim/family/semaim_vitb_800e.py).
#   python tools/train.py configs/saim/family/demo/semaim.py
_base_ = ['../../demo_cpu.py']

model = dict(
    order=dict(_delete_=True, type='SemanticOrder', source='teacher'),
    head=dict(
        _delete_=True,
        type='FeatureTargetHead',
        patch_size={{_base_.patch}},
        teacher=dict(type='EMATeacher', momentum=1e-3, end_momentum=1e-4),
        loss='normalized_l2'))
work_dir = './work_dirs/family_demo_semaim'
