"""The authors' SAIM checkpoint layout -> saim_mm SAIM: same loss as a float64 implementation of the paper.

The reference below is written from the paper (Eq. 1-3, "Stochastic Autoregressive Image Modeling") and
works directly on tensors named as in the authors' release (qiy20/SAIM): separate q, k, v projections,
dense permutation masks over tokens in raster position, the query stream starting from the position
embeddings, a decoder LayerNorm and prediction head, Gaussian-smoothed norm-pix targets.
"""
import argparse
import math
import os

import pytest
import torch
import torch.nn.functional as F

from saim_mm.checkpoint import ConversionError, official_saim_to_mm
from tests.conftest import build_tiny_saim


def authors_state_dict(depth=4, query_depth=4, C=32, hidden=64, patch=4, img=16, predictor='mlp',
                       shared=False, kernel_size=3, sigma=1.0, seed=0) -> dict:
    """Random weights in the authors' key layout (what their SaimViT.state_dict() holds)."""
    g = torch.Generator().manual_seed(seed)

    def rnd(*shape, scale=0.2):
        return torch.randn(*shape, generator=g) * scale

    def block(prefix):
        sd = {}
        for name in ('norm1', 'norm2'):
            sd[f'{prefix}{name}.weight'] = 1 + rnd(C, scale=0.1)
            sd[f'{prefix}{name}.bias'] = rnd(C, scale=0.1)
        for name in ('q', 'k', 'v', 'proj'):
            sd[f'{prefix}attn.{name}.weight'] = rnd(C, C)
            sd[f'{prefix}attn.{name}.bias'] = rnd(C, scale=0.05)
        sd[f'{prefix}mlp.fc1.weight'], sd[f'{prefix}mlp.fc1.bias'] = rnd(hidden, C), rnd(hidden, scale=0.05)
        sd[f'{prefix}mlp.fc2.weight'], sd[f'{prefix}mlp.fc2.bias'] = rnd(C, hidden), rnd(C, scale=0.05)
        return sd

    N = (img // patch)**2
    sd = {'cls_token': rnd(1, 1, C), 'pos_embed': rnd(1, N + 1, C, scale=0.5),
          'patch_embed.proj.weight': rnd(C, 3, patch, patch), 'patch_embed.proj.bias': rnd(C, scale=0.05)}
    for i in range(depth):
        sd.update(block(f'blocks.{i}.'))
    if shared:  # their query_blocks is the same ModuleList: state_dict() lists every block twice
        sd.update({'query_blocks.' + k[len('blocks.'):]: v for k, v in list(sd.items()) if k.startswith('blocks.')})
    else:
        for j in range(query_depth):
            sd.update(block(f'query_blocks.{j}.'))
    sd['norm.weight'], sd['norm.bias'] = 1 + rnd(C, scale=0.1), rnd(C, scale=0.1)
    out = patch * patch * 3
    if predictor == 'mlp':
        sd.update({'prediction_head.fc1.weight': rnd(4 * C, C), 'prediction_head.fc1.bias': rnd(4 * C),
                   'prediction_head.fc2.weight': rnd(out, 4 * C), 'prediction_head.fc2.bias': rnd(out)})
    else:
        sd.update({'prediction_head.weight': rnd(out, C), 'prediction_head.bias': rnd(out)})
    if kernel_size is not None:  # their GaussianConv2d buffer (normalised 2-D Gaussian, per channel)
        ax = torch.arange(kernel_size, dtype=torch.float32) - kernel_size // 2
        k2 = torch.exp(-(ax[:, None]**2 + ax[None, :]**2) / (2 * sigma**2))
        sd['gaussian_blur.weight'] = (k2 / k2.sum()).expand(3, 1, -1, -1).clone()
    return sd


def paper_loss_float64(sd, images, order, num_heads, patch, kernel_size, sigma, norm_pix=True, criterion='L2',
                       query_depth=None):
    """SAIM loss computed from the paper's equations in float64 on the authors' tensors."""
    sd = {k: v.double() for k, v in sd.items()}
    x = images.double()
    B = x.shape[0]
    C = sd['cls_token'].shape[-1]
    depth = 1 + max(int(k.split('.')[1]) for k in sd if k.startswith('blocks.'))
    blocks_q = sorted({int(k.split('.')[1]) for k in sd if k.startswith('query_blocks.')})
    query_depth = query_depth or len(blocks_q)
    step = depth // query_depth
    # tokens in raster position: [cls, s_0, ..., s_{N-1}]
    s = F.conv2d(x, sd['patch_embed.proj.weight'], sd['patch_embed.proj.bias'], stride=patch)
    s = s.flatten(2).transpose(1, 2) + sd['pos_embed'][:, 1:]
    N = s.shape[1]
    h = torch.cat([(sd['cls_token'] + sd['pos_embed'][:, :1]).expand(B, -1, -1), s], dim=1)
    g = sd['pos_embed'].expand(B, -1, -1)
    # permutation masks (Eq. 3): rank[i] = step at which patch i is generated
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(N).expand(B, -1))
    content = torch.zeros(B, N + 1, N + 1, dtype=torch.bool)
    query = torch.zeros(B, N + 1, N + 1, dtype=torch.bool)
    content[:, 1:, 1:] = rank[:, None, :] <= rank[:, :, None]  # i sees j iff j is generated no later
    query[:, 1:, 1:] = rank[:, None, :] < rank[:, :, None]  # i sees j iff j is generated before
    content[:, :, 0] = query[:, :, 0] = True  # every token sees cls; cls sees only itself

    def ln(t, name):
        return F.layer_norm(t, (C, ), sd[name + '.weight'], sd[name + '.bias'], eps=1e-6)

    def lin(t, name):
        return t @ sd[name + '.weight'].T + sd[name + '.bias']

    def block(p, q_in, kv_in, allowed):
        q, k, v = lin(ln(q_in, p + 'norm1'), p + 'attn.q'), lin(ln(kv_in, p + 'norm1'), p + 'attn.k'), \
            lin(ln(kv_in, p + 'norm1'), p + 'attn.v')
        dh = C // num_heads
        q, k, v = (t.reshape(B, -1, num_heads, dh).transpose(1, 2) for t in (q, k, v))
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(dh)
        scores = scores.masked_fill(~allowed[:, None], float('-inf'))
        out = (scores.softmax(-1) @ v).transpose(1, 2).reshape(B, -1, C)
        y = q_in + lin(out, p + 'attn.proj')
        mid = F.gelu(lin(ln(y, p + 'norm2'), p + 'mlp.fc1'))
        return y + lin(mid, p + 'mlp.fc2')

    for i in range(depth):
        h = block(f'blocks.{i}.', h, h, content)
        if (i + 1) % step == 0:
            g = block(f'query_blocks.{i // step}.', g, h, query)
    z = ln(g, 'norm')
    if 'prediction_head.fc1.weight' in sd:
        pred = lin(F.gelu(lin(z, 'prediction_head.fc1')), 'prediction_head.fc2')
    else:
        pred = lin(z, 'prediction_head')
    pred = pred[:, 1:]  # row i predicts patch i (raster position)
    if kernel_size is not None:
        ax = torch.arange(kernel_size, dtype=torch.float64) - (kernel_size - 1) / 2
        kern = torch.exp(-(ax[:, None]**2 + ax[None, :]**2) / (2 * sigma**2))
        kern = (kern / kern.sum()).expand(3, 1, -1, -1)
        x = F.conv2d(x, kern, padding=kernel_size // 2, groups=3)
    hp, wp = x.shape[2] // patch, x.shape[3] // patch
    target = x.reshape(B, 3, hp, patch, wp, patch).permute(0, 2, 4, 3, 5, 1).reshape(B, hp * wp, -1)
    if norm_pix:
        target = (target - target.mean(-1, keepdim=True)) / (target.var(-1, keepdim=True) + 1e-6).sqrt()
    diff = pred - target
    return (diff**2 if criterion == 'L2' else diff.abs()).mean()


CASES = {
    'mlp_gauss': dict(predictor='mlp', shared=False, kernel_size=3, query_depth=4),
    'linear_nogauss_dec2': dict(predictor='linear', shared=False, kernel_size=None, query_depth=2),
    'shared_dec2': dict(predictor='mlp', shared=True, kernel_size=5, query_depth=2),
}


@pytest.mark.parametrize('case', sorted(CASES))
def test_converted_authors_checkpoint_gives_the_papers_loss(case):
    opts = CASES[case]
    sd = authors_state_dict(predictor=opts['predictor'], shared=opts['shared'], kernel_size=opts['kernel_size'],
                            query_depth=opts['query_depth'], sigma=1.0)
    converted, report = official_saim_to_mm(sd, query_depth=opts['query_depth'] if opts['shared'] else None)
    arch = report.arch
    assert arch['predictor'] == opts['predictor'] and arch['share_encoder_weights'] == opts['shared']
    assert arch['query_depth'] == opts['query_depth'] and arch['kernel_size'] == opts['kernel_size']
    if opts['kernel_size']:
        assert arch['sigma'] == pytest.approx(1.0, rel=1e-5)
    model = build_tiny_saim(depth=4, dec_depth=opts['query_depth'], embed_dims=32, heads=2, patch=4, img_size=16,
                            shared=opts['shared'], predictor=opts['predictor'], kernel_size=opts['kernel_size'])
    missing, unexpected = model.load_state_dict(converted, strict=True)
    assert not missing and not unexpected
    model = model.double()
    torch.manual_seed(1)
    images = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    order = torch.stack([torch.randperm(16), torch.randperm(16)])
    with torch.no_grad():
        ours = model.loss(images, order=order)['loss']
    ref = paper_loss_float64(sd, images, order, num_heads=2, patch=4, kernel_size=opts['kernel_size'], sigma=1.0,
                             query_depth=opts['query_depth'])
    rel = abs(float(ours) - float(ref)) / abs(float(ref))
    print(f'{case}: saim_mm {float(ours):.12f} paper float64 {float(ref):.12f} rel {rel:.2e}')
    assert rel <= 1e-6
    # the comparison can fail: another order (or a wrong conversion) changes the loss
    other = paper_loss_float64(sd, images, order.flip(1), num_heads=2, patch=4, kernel_size=opts['kernel_size'],
                               sigma=1.0, query_depth=opts['query_depth'])
    assert abs(float(other) - float(ref)) / abs(float(ref)) > 1e-3


def test_model_cfg_suggestion_fits():
    sd = authors_state_dict()
    converted, report = official_saim_to_mm(sd)
    import runpy

    from tests.conftest import REPO
    saim_model_cfg = runpy.run_path(os.path.join(REPO, 'tools/model_converters/official2saim.py'))['saim_model_cfg']
    cfg = saim_model_cfg(report.arch, num_heads=2)
    assert cfg['backbone']['img_size'] == 16 and cfg['neck']['num_layers'] == 4
    assert cfg['head']['kernel_size'] == 3 and cfg['head']['sigma'] == pytest.approx(1.0)
    assert not report.dropped[:-1] and report.dropped[-1][0] == 'gaussian_blur.weight'
    assert [k for k, _ in report.added] == ['backbone.ln1.weight', 'backbone.ln1.bias']


def test_authors_checkpoint_errors_name_keys_and_shapes():
    sd = authors_state_dict()
    bad = dict(sd)
    del bad['blocks.2.attn.k.weight']
    with pytest.raises(ConversionError, match=r'blocks\.2\.attn\.k\.weight'):
        official_saim_to_mm(bad)
    bad = dict(sd, **{'decoder_pred.weight': torch.zeros(3, 3)})
    with pytest.raises(ConversionError, match=r'unexpected keys: decoder_pred\.weight \[3, 3\]'):
        official_saim_to_mm(bad)
    bad = dict(sd, **{'blocks.1.mlp.fc2.weight': torch.zeros(32, 65)})
    with pytest.raises(ConversionError,
                       match=r'layers\.1\.ffn\.layers\.1\.weight: got \[32, 65\], expected \[32, 64\]'):
        official_saim_to_mm(bad)
    with pytest.raises(ConversionError, match='missing keys'):
        official_saim_to_mm({'encoder.weight': torch.zeros(2)})


def test_official_tool_reads_their_checkpoint_file(tmp_path):
    """Their files hold {'model', 'optimizer', 'epoch', 'args' (argparse.Namespace)}; read weights-only."""
    import subprocess
    import sys

    from tests.conftest import REPO

    def tool(*args):
        return subprocess.run([sys.executable, f'{REPO}/tools/model_converters/official2saim.py', *map(str, args)],
                              capture_output=True, text=True, cwd=REPO, env={**os.environ, 'PYTHONPATH': REPO},
                              timeout=300)

    src, dst = tmp_path / 'saim_demo.pth', tmp_path / 'converted.pth'
    # the dimensions of configs/saim/demo_cpu.py: width 96, 4 blocks, 4x4 patches on 32x32, k=3 Gaussian
    sd = authors_state_dict(depth=4, query_depth=4, C=96, hidden=384, patch=4, img=32, kernel_size=3)
    torch.save({'model': {'module.' + k: v for k, v in sd.items()}, 'epoch': 799,
                'args': argparse.Namespace(model='saim_base', query_depth=4)}, src)
    run = tool(src, dst, '--num-heads', '3', '--config', 'configs/saim/demo_cpu.py')
    assert run.returncode == 0, run.stderr
    assert 'fits the model of configs/saim/demo_cpu.py' in run.stdout
    assert 'dropped checkpoint entries: epoch, args' in run.stdout
    assert "'num_layers': 4" in run.stdout and "'img_size': 32" in run.stdout and 'saved' in run.stdout
    ckpt = torch.load(dst, weights_only=True)
    assert ckpt['state_dict']['backbone.layers.0.attn.qkv.weight'].shape == (288, 96)
    # a config it does not fit: the error names keys and shapes
    run = tool(src, dst, '--config', 'configs/saim/vitb_800e.py')
    assert run.returncode != 0
    assert 'backbone.cls_token: got [1, 1, 96], expected [1, 1, 768]' in run.stderr
    # not a checkpoint at all
    (tmp_path / 'notes.txt').write_text('hello')
    run = tool(tmp_path / 'notes.txt', dst)
    assert run.returncode != 0 and 'is not a PyTorch checkpoint' in run.stderr and 'a text file' in run.stderr
