"""tools/model_converters: backbone-only checkpoints for mmpretrain, and the timm round trip."""
import os
import os.path as osp
import subprocess
import sys
import uuid

import pytest
import torch
from mmengine.logging import MMLogger
from mmpretrain.registry import MODELS

import saim_mm  # noqa: F401
from saim_mm.checkpoint import (CheckpointLoadError, ConversionError, extract_backbone, load_state_dict_file,
                                mm_to_timm, timm_to_mm)
from tests.conftest import REPO, build_tiny_saim

TOOLS = osp.join(REPO, 'tools', 'model_converters')


def run_tool(name: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, osp.join(TOOLS, name), *map(str, args)], capture_output=True,
                          text=True, cwd=REPO, env={**os.environ, 'PYTHONPATH': REPO}, timeout=300)


def run_tool_here(name: str, *args: str, capsys) -> str:
    """Run a converter's ``main()`` in this process (no interpreter start-up); returns what it printed."""
    import runpy
    argv = sys.argv
    sys.argv = [name, *map(str, args)]
    try:
        runpy.run_path(osp.join(TOOLS, name), run_name='__main__')
    finally:
        sys.argv = argv
    return capsys.readouterr().out


def perturb(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random values everywhere (norms and biases included), so that no renaming mistake can hide."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.state_dict().values():
            if p.is_floating_point():
                p.add_(torch.randn(p.shape, generator=g) * 0.05)
    return model


def tiny_vit(**kwargs):
    cfg = dict(type='VisionTransformer', arch=dict(embed_dims=32, num_layers=4, num_heads=2, feedforward_channels=64),
               img_size=16, patch_size=4, out_type='raw', final_norm=True)
    cfg.update(kwargs)
    return MODELS.build(cfg)


def fake_pretrain_checkpoint(path: str) -> dict:
    """A SAIM pre-training checkpoint as mmengine writes it: weights, optimizer state, meta."""
    model = perturb(build_tiny_saim())
    optim = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    model.loss(torch.randn(2, 3, 16, 16))['loss'].backward()
    optim.step()
    torch.save({'meta': {'epoch': 1, 'iter': 1}, 'state_dict': model.state_dict(),
                'optimizer': optim.state_dict()}, path)
    return model.state_dict()


def init_log(model: torch.nn.Module, tmp_path) -> str:
    """Run ``model.init_weights()`` and return what mmengine logged."""
    log_file = str(tmp_path / f'init_{uuid.uuid4().hex[:6]}.log')
    MMLogger.get_instance(f'convert_{uuid.uuid4().hex[:8]}', log_file=log_file, log_level='INFO')
    model.init_weights()
    for handler in MMLogger.get_current_instance().handlers:
        handler.flush()
    with open(log_file) as f:
        return f.read()


def test_backbone_checkpoint_loads_into_mmpretrain_vit_with_no_missing_or_unexpected_keys(tmp_path):
    src, dst = tmp_path / 'epoch_1.pth', tmp_path / 'backbone.pth'
    saim_sd = fake_pretrain_checkpoint(str(src))
    run = run_tool('saim2backbone.py', src, dst)
    assert run.returncode == 0, run.stderr
    print(run.stdout)
    assert 'dropped checkpoint entries: meta, optimizer' in run.stdout
    assert "under 'neck'" in run.stdout  # the decoder is reported as dropped
    ckpt = torch.load(dst, weights_only=True)
    assert all(k.startswith('backbone.') for k in ckpt['state_dict'])

    vit = tiny_vit(init_cfg=dict(type='Pretrained', checkpoint=str(dst), prefix='backbone.'))
    log = init_log(vit, tmp_path)
    assert f'load backbone. in model from: {dst}' in log
    assert 'missing keys' not in log and 'unexpected key' not in log, log
    for k, v in vit.state_dict().items():
        assert torch.equal(v, saim_sd['backbone.' + k]), k

    # control: the same check sees a key the backbone lacks
    broken = dict(ckpt['state_dict'])
    broken.pop('backbone.layers.3.ln2.bias')
    torch.save({'state_dict': broken}, tmp_path / 'broken.pth')
    vit = tiny_vit(init_cfg=dict(type='Pretrained', checkpoint=str(tmp_path / 'broken.pth'), prefix='backbone.'))
    log = init_log(vit, tmp_path)
    assert 'missing keys in source state_dict: layers.3.ln2.bias' in log


def test_backbone_tool_errors(tmp_path):
    (tmp_path / 'img.png').write_bytes(b'\x89PNG\r\n\x1a\n' + bytes(32))
    run = run_tool('saim2backbone.py', tmp_path / 'img.png', tmp_path / 'out.pth')
    assert run.returncode != 0 and 'not a PyTorch checkpoint' in run.stderr and 'a PNG image' in run.stderr
    torch.save({'state_dict': {'encoder.weight': torch.zeros(3)}}, tmp_path / 'other.pth')
    run = run_tool('saim2backbone.py', tmp_path / 'other.pth', tmp_path / 'out.pth')
    assert run.returncode != 0 and "no keys under 'backbone.'" in run.stderr and "['encoder']" in run.stderr
    sd = build_tiny_saim().state_dict()
    sd['backbone.layers.1.attn.qkv.weight'] = torch.zeros(96, 31)
    with pytest.raises(ConversionError, match=r'layers\.1\.attn\.qkv\.weight: got \[96, 31\], expected \[96, 32\]'):
        extract_backbone(sd)
    del sd['backbone.layers.0.ln1.bias']
    with pytest.raises(ConversionError, match=r'missing keys: layers\.0\.ln1\.bias \[32\]'):
        extract_backbone(sd)


def test_timm_round_trip_tiny():
    import timm.models.vision_transformer as tvit
    vit = perturb(tiny_vit(type='SAIMViT'))  # saim_mm's encoder, plain (unordered) forward
    vit.eval()  # mmpretrain's BaseBackbone.train() returns None
    encoder = vit.state_dict()
    timm_sd = mm_to_timm(encoder)
    model = tvit.VisionTransformer(img_size=16, patch_size=4, embed_dim=32, depth=4, num_heads=2, mlp_ratio=2,
                                   num_classes=0).eval()
    model.load_state_dict(timm_sd, strict=True)
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        ours, theirs = vit(x)[-1], model.forward_features(x)
    assert (ours - theirs).abs().max() <= 1e-5
    back, report = timm_to_mm(model.state_dict())
    assert back.keys() == encoder.keys() and all(torch.equal(back[k], encoder[k]) for k in encoder)
    # errors name the keys
    with pytest.raises(ConversionError, match=r'unexpected keys: fc_norm\.weight \[32\]'):
        timm_to_mm({**model.state_dict(), 'fc_norm.weight': torch.ones(32)})
    bad = dict(encoder)
    bad.pop('ln1.weight')
    with pytest.raises(ConversionError, match=r'missing keys: ln1\.weight \[32\]'):
        mm_to_timm(bad)


def test_timm_vit_base_patch16_224_round_trip_through_files(tmp_path, capsys):
    """saim_mm checkpoint -> .safetensors -> timm vit_base_patch16_224 (strict) -> same features -> back."""
    import timm
    vit = perturb(MODELS.build(dict(type='VisionTransformer', arch='b', img_size=224, patch_size=16,
                                    out_type='raw', final_norm=True)))
    vit.eval()
    sd = {'backbone.' + k: v for k, v in vit.state_dict().items()}
    sd['neck.ln.weight'] = torch.ones(768)  # e.g. a SAIM pre-training checkpoint: reported, not converted
    torch.save({'state_dict': sd, 'meta': {}}, tmp_path / 'saim.pth')
    out = run_tool_here('saim2timm.py', tmp_path / 'saim.pth', tmp_path / 'vit.safetensors', capsys=capsys)
    assert "dropped 1 tensor(s) under 'neck'" in out

    model = timm.create_model('vit_base_patch16_224', pretrained=False, num_classes=0).eval()
    timm_sd, _ = load_state_dict_file(str(tmp_path / 'vit.safetensors'))
    model.load_state_dict(timm_sd, strict=True)
    torch.manual_seed(0)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        ours, theirs = vit(x)[-1], model.forward_features(x)
    diff = float((ours - theirs).abs().max())
    print(f'vit_base_patch16_224 features: max |saim_mm - timm| = {diff:.2e}')
    assert diff <= 1e-5

    # timm's classifier head is dropped on the way back; the encoder tensors come back exactly
    full = timm.create_model('vit_base_patch16_224', pretrained=False, num_classes=1000)
    full.load_state_dict(timm_sd, strict=False)
    torch.save(full.state_dict(), tmp_path / 'timm_full.pth')
    out = run_tool_here('saim2timm.py', tmp_path / 'timm_full.pth', tmp_path / 'back.pth', '--reverse',
                        capsys=capsys)
    assert "dropped 2 tensor(s) under 'head'" in out
    back = torch.load(tmp_path / 'back.pth', weights_only=True)['state_dict']
    original = {k: v for k, v in sd.items() if k.startswith('backbone.')}
    assert back.keys() == original.keys()
    assert all(torch.equal(back[k], original[k]) for k in original)
    # the safetensors file itself can be converted back too
    run_tool_here('saim2timm.py', tmp_path / 'vit.safetensors', tmp_path / 'back2.pth', '--reverse', capsys=capsys)
    back2 = torch.load(tmp_path / 'back2.pth', weights_only=True)['state_dict']
    assert all(torch.equal(back2[k], original[k]) for k in original)


def test_bad_safetensors_file(tmp_path):
    (tmp_path / 'x.safetensors').write_bytes(b'garbage' * 10)
    with pytest.raises(CheckpointLoadError, match='not a valid .safetensors file'):
        load_state_dict_file(str(tmp_path / 'x.safetensors'))
