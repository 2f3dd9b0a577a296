"""Every checkpoint layout loads into saim_mm's models, converted where the weights go in (checkpoint_filter_fn).

Tiny random models are saved in each layout (the authors', timm, saim_mm, backbone-only); loading them
through ``init_cfg=dict(type='Pretrained')``, ``mmpretrain.get_model(..., pretrained=PATH)`` (mmengine's
``load_checkpoint``, as ``load_from``) and ``model.load_state_dict`` must give the features of the same
model loaded, strictly, with the converter's output.
"""
import argparse
import logging

import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.runner import load_checkpoint
from mmengine.runner.checkpoint import _load_checkpoint
from mmpretrain import get_model
from mmpretrain.registry import MODELS

import saim_mm  # noqa: F401
from saim_mm.apis import extract_features, reconstruct
from saim_mm.checkpoint import (LAYOUTS, ConversionError, checkpoint_filter_fn, detect_layout, extract_backbone,
                                load_state_dict_file, mm_to_timm, official_saim_to_mm, save_state_dict_file,
                                strip_prefix, timm_to_mm)
from tests.conftest import tiny_saim_cfg
from tests.test_checkpoint.test_official_layout import authors_state_dict

LAYOUT_NAMES = [name for name, _, _ in LAYOUTS]
CONVERTED = ('authors', 'timm', 'timm_safetensors')  # into a SAIM; saim_mm's own layouts load as they are


class Records(logging.Handler):
    """Collects the messages of mmengine's current logger."""

    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@pytest.fixture
def log():
    logger = MMLogger.get_current_instance()
    handler = Records()
    logger.addHandler(handler)
    yield handler.messages
    logger.removeHandler(handler)


def encoder_cfg(**kw) -> dict:
    return {**tiny_saim_cfg()['backbone'], **kw}


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    """{layout: (file, the converter's output as a saim_mm state dict)} for one tiny random model."""
    tmp = tmp_path_factory.mktemp('layouts')
    theirs = authors_state_dict(seed=3)
    saim, _ = official_saim_to_mm(theirs)
    backbone, _ = extract_backbone(saim)
    timm_sd = mm_to_timm(strip_prefix({k: v for k, v in backbone.items()}, 'backbone.'))
    timm_sd['head.weight'], timm_sd['head.bias'] = torch.randn(10, 32), torch.randn(10)
    paths = {name: str(tmp / f'{name}.pth') for name in ('authors', 'saim_mm', 'backbone', 'timm')}
    torch.save({'model': {'module.' + k: v for k, v in theirs.items()}, 'epoch': 99,
                'args': argparse.Namespace(model='saim_base', query_depth=4)}, paths['authors'])
    torch.save({'state_dict': saim, 'meta': {}}, paths['saim_mm'])
    torch.save({'state_dict': backbone, 'meta': {}}, paths['backbone'])
    save_state_dict_file(timm_sd, str(tmp / 'timm.safetensors'))
    save_state_dict_file(timm_sd, paths['timm'], wrap=False)
    timm_back, _ = timm_to_mm(timm_sd)  # what saim2timm.py --reverse writes
    return dict(authors=(paths['authors'], saim), saim_mm=(paths['saim_mm'], saim),
                backbone=(paths['backbone'], backbone),
                timm=(paths['timm'], {'backbone.' + k: v for k, v in timm_back.items()}),
                timm_safetensors=(str(tmp / 'timm.safetensors'), {'backbone.' + k: v for k, v in timm_back.items()}))


def reference_encoder(state_dict):
    model = MODELS.build(encoder_cfg())
    model.load_state_dict(strip_prefix({k: v for k, v in state_dict.items() if k.startswith('backbone.')},
                                       'backbone.'), strict=True)
    model.eval()  # (mmpretrain's backbones' train() returns None)
    return model


@pytest.mark.parametrize('case', ['authors', 'saim_mm', 'backbone', 'timm', 'timm_safetensors'])
def test_pretrained_init_loads_every_layout_like_the_converter_output(files, case, log):
    path, converted = files[case]
    model = MODELS.build(encoder_cfg(init_cfg=dict(type='Pretrained', checkpoint=path, prefix='backbone.')))
    model.init_weights()
    model.eval()
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        got, expected = model(x)[0], reference_encoder(converted)(x)[0]
    assert got.shape == (2, 32)
    assert (got - expected).abs().max() <= 1e-6
    layout = 'timm' if case.startswith('timm') else case
    lines = [m for m in log if m.startswith(f'Checkpoint {path}: layout {layout} (')]
    assert len(lines) == 1, log
    if case == 'authors':  # the encoder only: the decoder is converted, then reported as dropped
        assert "dropped checkpoint entries: epoch, args" in lines[0]
        assert "dropped 1 tensor(s) under 'gaussian_blur'" in lines[0] and "under 'neck'" in lines[0]
        assert 'added backbone.ln1.weight: ones' in lines[0]
    if case.startswith('timm'):
        assert "dropped 2 tensor(s) under 'head'" in lines[0]


@pytest.mark.parametrize('case', ['authors', 'saim_mm', 'backbone', 'timm'])
def test_get_model_loads_every_layout_like_the_converter_output(files, case, log):
    """``get_model(pretrained=)`` reads with mmengine's loader (torch's weights-only default): the authors'
    file, with its ``argparse.Namespace``, needs that type allowed by the caller."""
    path, converted = files[case]
    cfg = Config(dict(model=tiny_saim_cfg()))
    with torch.serialization.safe_globals([argparse.Namespace]):
        model = get_model(cfg, pretrained=path)
    reference = MODELS.build(tiny_saim_cfg()).eval()
    full = any(k.startswith('neck.') for k in converted)
    missing, unexpected = reference.load_state_dict(converted, strict=False)
    assert not unexpected and (not missing if full else all(k.startswith('neck.') for k in missing))
    x = torch.randn(2, 3, 16, 16)
    assert (extract_features(model, x) - extract_features(reference, x)).abs().max() <= 1e-6
    assert (extract_features(model, x, 'mean') - extract_features(reference, x, 'mean')).abs().max() <= 1e-6
    if full:  # the decoder came along: the same predictions
        order = torch.stack([torch.randperm(16) for _ in range(2)])
        assert (reconstruct(model, x, order)[1] - reconstruct(reference, x, order)[1]).abs().max() <= 1e-6
    lines = [m for m in log if m.startswith(f'SAIM state dict: layout {case} (')]
    assert len(lines) == (case in CONVERTED), log


@pytest.mark.parametrize('case', ['authors', 'saim_mm', 'backbone', 'timm', 'timm_safetensors'])
def test_load_state_dict_converts_into_saim_and_the_encoder(files, case):
    """``model.load_state_dict`` (strict) of the file's weights, ``module.`` prefixes and all."""
    path, converted = files[case]
    weights, _ = load_state_dict_file(path, allow_namespace=True)
    saim = MODELS.build(tiny_saim_cfg())
    if any(k.startswith('neck.') for k in converted):
        saim.load_state_dict(weights, strict=True)
        assert all(torch.equal(v, converted[k]) for k, v in saim.state_dict().items() if k in converted)
    encoder = MODELS.build(encoder_cfg())
    encoder.load_state_dict(weights, strict=True)
    for k, v in encoder.state_dict().items():
        assert torch.equal(v, converted['backbone.' + k]), k


def test_authors_fine_tuned_vit_loads_as_an_encoder(tmp_path, log):
    """Their fine-tuned / probed ViT: no query stream, ``norm`` is the encoder's final norm, ``head`` dropped."""
    theirs = {k: v for k, v in authors_state_dict(seed=5).items()
              if not k.startswith(('query_blocks.', 'prediction_head', 'gaussian_blur'))}
    theirs['head.weight'], theirs['head.bias'] = torch.randn(7, 32), torch.randn(7)
    converted = checkpoint_filter_fn(theirs, MODELS.build(encoder_cfg()))
    assert torch.equal(converted['ln1.weight'], theirs['norm.weight'])
    converted = {'backbone.' + k: v for k, v in converted.items()}
    path = str(tmp_path / 'their_finetuned.pth')
    torch.save({'model': theirs}, path)
    model = MODELS.build(encoder_cfg(init_cfg=dict(type='Pretrained', checkpoint=path, prefix='backbone.')))
    model.init_weights()
    model.eval()
    x = torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(model(x)[0], reference_encoder(converted)(x)[0])
    line = next(m for m in log if m.startswith(f'Checkpoint {path}: layout authors ('))
    assert "dropped 2 tensor(s) under 'head': head.bias [7], head.weight [7, 32]" in line


def test_foreign_file_is_refused_with_the_layouts_tried(tmp_path):
    resnet = MODELS.build(dict(type='ResNet', depth=18)).state_dict()
    path = str(tmp_path / 'resnet18.pth')
    torch.save(resnet, path)
    model = MODELS.build(encoder_cfg(init_cfg=dict(type='Pretrained', checkpoint=path, prefix='backbone.')))
    with pytest.raises(ConversionError) as err:
        model.init_weights()
    message = str(err.value)
    assert f'Checkpoint {path} fits none of the checkpoint layouts saim_mm reads' in message
    for name in LAYOUT_NAMES:
        assert f'{name} = ' in message
    assert 'conv1.weight' in message  # what the file has
    saim = MODELS.build({**tiny_saim_cfg(), 'init_cfg': dict(type='Pretrained', checkpoint=path)})
    with pytest.raises(ConversionError, match='SAIM state dict fits none of the checkpoint layouts'):
        saim.init_weights()  # mmengine's PretrainedInit, then SAIM's own load pre-hook
    with pytest.raises(ConversionError, match='SAIM state dict fits none of the checkpoint layouts'):
        load_checkpoint(MODELS.build(tiny_saim_cfg()), path)  # load_from, get_model(pretrained=)
    with pytest.raises(ConversionError, match=r'SAIMViT state dict fits none .*conv1\.weight'):
        MODELS.build(encoder_cfg()).load_state_dict(resnet)
    # another model's file still loads into that model, untouched
    other = MODELS.build(dict(type='ResNet', depth=18, init_cfg=dict(type='Pretrained', checkpoint=path)))
    other.init_weights()
    assert all(torch.equal(v, resnet[k]) for k, v in other.state_dict().items())
    assert _load_checkpoint(path).keys() == resnet.keys()


def test_a_file_with_a_layouts_keys_that_does_not_fit_names_the_problem(files, tmp_path):
    path, _ = files['timm']
    broken = {k: v for k, v in torch.load(path, weights_only=True).items() if k != 'blocks.1.attn.proj.weight'}
    bad = str(tmp_path / 'broken_timm.pth')
    torch.save(broken, bad)
    with pytest.raises(ConversionError, match=r'(?s)SAIM state dict has the keys of layout timm .* but does not '
                       r'fit it: .*missing .*layers\.1\.attn\.proj\.weight'):
        load_checkpoint(MODELS.build(tiny_saim_cfg()), bad)
    vit = MODELS.build(encoder_cfg(init_cfg=dict(type='Pretrained', checkpoint=bad, prefix='backbone.')))
    with pytest.raises(ConversionError, match=rf'(?s)Checkpoint {bad} has the keys of layout timm .* but does not '
                       r'fit it: .*missing .*layers\.1\.attn\.proj\.weight \[32, 32\]'):
        vit.init_weights()
    # converted keys the model lacks, and a model part the file fills only partly, are errors too
    small = MODELS.build(encoder_cfg(arch=dict(embed_dims=32, num_layers=3, num_heads=2, feedforward_channels=64)))
    with pytest.raises(ConversionError, match=r'unexpected keys: layers\.3\.ln1\.weight \[32\]'):
        checkpoint_filter_fn(torch.load(path, weights_only=True), small)
    no_norm = {k: v for k, v in torch.load(path, weights_only=True).items() if not k.startswith('norm.')}
    with pytest.raises(ConversionError, match=r'missing keys: ln1\.weight \[32\], ln1\.bias \[32\]'):
        checkpoint_filter_fn(no_norm, MODELS.build(encoder_cfg()))


def test_detect_layout_and_what_each_model_takes():
    saim, _ = official_saim_to_mm(authors_state_dict())
    assert detect_layout(saim)[0] == 'saim_mm'
    vit, model = MODELS.build(encoder_cfg()), MODELS.build(tiny_saim_cfg())
    encoder = checkpoint_filter_fn({'module.' + k: v for k, v in saim.items()}, vit)  # the encoder: backbone.*
    assert encoder.keys() == vit.state_dict().keys()
    assert detect_layout(encoder)[0] == 'encoder' and detect_layout(mm_to_timm(encoder))[0] == 'timm'
    assert checkpoint_filter_fn({'state_dict': saim}, model) == saim  # a SAIM takes it as it is
    assert checkpoint_filter_fn(encoder, model).keys() == {'backbone.' + k for k in encoder}
    assert checkpoint_filter_fn({'model': mm_to_timm(encoder)}, vit).keys() == encoder.keys()


def test_dense_vit_loads_a_timm_file_at_another_size_with_its_own_extras(files):
    """SAIMDenseViT's relative position biases are in no file (they stay zero); its position embedding is
    resized by mmpretrain's own pre-hook, which sees the converted names."""
    path, converted = files['timm']
    dense = MODELS.build(encoder_cfg(type='SAIMDenseViT', img_size=24, use_rel_pos_bias=True, out_type='featmap',
                                     init_cfg=dict(type='Pretrained', checkpoint=path, prefix='backbone.')))
    dense.init_weights()
    assert torch.equal(dense.layers[2].attn.qkv.weight, converted['backbone.layers.2.attn.qkv.weight'])
    assert dense.pos_embed.shape == (1, 37, 32) and not dense.pos_embed.isnan().any()
    direct = MODELS.build(encoder_cfg(type='SAIMDenseViT', img_size=24, use_rel_pos_bias=True, out_type='featmap'))
    direct.load_state_dict(torch.load(path, weights_only=True), strict=False)
    assert torch.equal(direct.pos_embed, dense.pos_embed)
    assert all(not p.any() for n, p in direct.named_parameters() if 'rel_pos_bias' in n)


def test_pretrained_without_prefix_takes_the_encoder(files):
    """A ViT given ``Pretrained`` without ``prefix`` takes backbone.*, where every layout's encoder ends up."""
    x = torch.randn(1, 3, 16, 16)
    for case in ('timm', 'saim_mm'):
        path, converted = files[case]
        model = MODELS.build(encoder_cfg(init_cfg=dict(type='Pretrained', checkpoint=path)))
        model.init_weights()
        model.eval()
        with torch.no_grad():
            assert torch.equal(model(x)[0], reference_encoder(converted)(x)[0]), case
