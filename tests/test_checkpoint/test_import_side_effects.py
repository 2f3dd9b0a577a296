"""``import saim_mm`` registers saim_mm's modules and changes nothing in what mmengine loads for other models.

A fresh interpreter (so that saim_mm is really absent first) loads, before and after the import:
mmengine's ``_load_checkpoint`` of a timm ViT file (bare state dict and ``{'model': sd}``) and of a ResNet
file, and models that are not saim_mm's with ``init_cfg=dict(type='Pretrained')``: mmpretrain's
``VisionTransformer`` and mmdet's ``ResNet`` given the timm file, mmdet's ``ResNet`` given the ResNet file.
"""
import os
import subprocess
import sys
import textwrap

from tests.conftest import REPO

SCRIPT = textwrap.dedent('''
    import sys
    import timm
    import torch
    from mmengine.runner.checkpoint import _load_checkpoint

    assert 'saim_mm' not in sys.modules
    out = sys.argv[1]
    vit = timm.create_model('vit_tiny_patch16_224', pretrained=False, num_classes=10, img_size=32)
    torch.save(vit.state_dict(), f'{out}/timm.pth')
    torch.save({'model': vit.state_dict()}, f'{out}/timm_model.pth')
    from mmdet.registry import MODELS as MMDET
    from mmpretrain.registry import MODELS as MMPRE
    torch.save(MMDET.build(dict(type='ResNet', depth=18)).state_dict(), f'{out}/resnet.pth')

    def snapshot():
        files = {name: _load_checkpoint(f'{out}/{name}.pth', map_location='cpu')
                 for name in ('timm', 'timm_model', 'resnet')}
        models = {}
        for name, registry, cfg, ckpt in (
                ('mmpretrain_vit', MMPRE, dict(type='VisionTransformer', arch='deit-tiny', img_size=32), 'timm'),
                ('mmdet_resnet_timm', MMDET, dict(type='ResNet', depth=18), 'timm'),
                ('mmdet_resnet', MMDET, dict(type='ResNet', depth=18), 'resnet')):
            torch.manual_seed(0)
            model = registry.build(dict(cfg, init_cfg=dict(type='Pretrained', checkpoint=f'{out}/{ckpt}.pth')))
            model.init_weights()
            models[name] = model.state_dict()
        return files, models

    def same(a, b, where):
        assert type(a) is type(b), where
        if isinstance(a, dict):
            assert list(a) == list(b), f'{where}: keys {list(a)[:5]} != {list(b)[:5]}'
            for k in a:
                same(a[k], b[k], f'{where}.{k}')
        elif isinstance(a, (tuple, list)):
            assert len(a) == len(b), where
            for i, (x, y) in enumerate(zip(a, b)):
                same(x, y, f'{where}[{i}]')
        elif isinstance(a, torch.Tensor):
            assert torch.equal(a, b), where
        else:
            assert a == b, where

    before = snapshot()
    import mmengine.model.weight_init as weight_init
    from mmengine.registry import WEIGHT_INITIALIZERS
    from mmengine.runner.checkpoint import CheckpointLoader, load_from_local
    allowed = set(map(str, torch.serialization.get_safe_globals()))
    import saim_mm  # noqa: F401
    after = snapshot()
    same(before, after, 'loaded')
    assert WEIGHT_INITIALIZERS.get('Pretrained') is weight_init.PretrainedInit
    assert CheckpointLoader._schemes[''] is load_from_local
    assert set(map(str, torch.serialization.get_safe_globals())) == allowed
    # the comparison can fail: the ViT given the timm file keeps its random weights, the ResNet takes its file
    vit_qkv = before[1]['mmpretrain_vit']['layers.0.attn.qkv.weight']
    timm_qkv = before[0]['timm']['blocks.0.attn.qkv.weight']
    assert vit_qkv.shape == timm_qkv.shape and not torch.equal(vit_qkv, timm_qkv)
    assert torch.equal(before[1]['mmdet_resnet']['conv1.weight'], before[0]['resnet']['conv1.weight'])
    print('unchanged by import saim_mm:', sorted(before[0]), sorted(before[1]))
''')


def test_import_saim_mm_changes_nothing_mmengine_loads_for_other_models(tmp_path):
    run = subprocess.run([sys.executable, '-c', SCRIPT, str(tmp_path)], capture_output=True, text=True, cwd=REPO,
                         env={**os.environ, 'PYTHONPATH': REPO}, timeout=300)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:]
    assert "unchanged by import saim_mm: ['resnet', 'timm', 'timm_model']" in run.stdout
