"""Every checkpoint layout loads wherever a checkpoint is loaded, converted in memory (saim_mm.checkpoint.layouts).

Tiny random models are saved in each layout (the authors', timm, saim_mm, backbone-only); loading them
through ``init_cfg=dict(type='Pretrained')`` and through ``mmpretrain.get_model(..., pretrained=PATH)``
must give the features of the same model loaded, strictly, with the converter's output.
"""
import argparse
import logging

import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.runner import load_checkpoint
from mmpretrain import get_model
from mmpretrain.registry import MODELS

import saim_mm  # noqa: F401
from saim_mm.apis import extract_features, reconstruct
from saim_mm.checkpoint import (LAYOUTS, ConversionError, detect_layout, extract_backbone, load_any_layout,
                                mm_to_timm, official_saim_to_mm, save_state_dict_file, strip_prefix, timm_to_mm,
                                to_saim_mm)
from tests.conftest import tiny_saim_cfg
from tests.test_checkpoint.test_official_layout import authors_state_dict

LAYOUT_NAMES = [layout.name for layout in LAYOUTS]


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


@pytest.mark.parametrize('case', ['authors', 'saim_mm', 'backbone', 'timm', 'timm_safetensors'])
def test_get_model_loads_every_layout_like_the_converter_output(files, case, log):
    path, converted = files[case]
    cfg = Config(dict(model=tiny_saim_cfg()))
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
    layout = 'timm' if case.startswith('timm') else case
    assert sum(m.startswith(f'Checkpoint {path}: layout {layout} (') for m in log) == 1, log


def test_authors_fine_tuned_vit_loads_as_an_encoder(tmp_path):
    """Their fine-tuned / probed ViT: no query stream, ``norm`` is the encoder's final norm, ``head`` dropped."""
    theirs = {k: v for k, v in authors_state_dict(seed=5).items()
              if not k.startswith(('query_blocks.', 'prediction_head', 'gaussian_blur'))}
    theirs['head.weight'], theirs['head.bias'] = torch.randn(7, 32), torch.randn(7)
    converted, report, layout = to_saim_mm(theirs, target='backbone')
    assert layout.name == 'authors'
    assert torch.equal(converted['backbone.ln1.weight'], theirs['norm.weight'])
    assert [k for k, _ in report.dropped] == ['head.bias', 'head.weight']
    path = str(tmp_path / 'their_finetuned.pth')
    torch.save({'model': theirs}, path)
    model = MODELS.build(encoder_cfg(init_cfg=dict(type='Pretrained', checkpoint=path, prefix='backbone.')))
    model.init_weights()
    model.eval()
    x = torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(model(x)[0], reference_encoder(converted)(x)[0])


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
    with pytest.raises(ConversionError, match='fits none of the checkpoint layouts'):
        saim.init_weights()
    # the loader serves every model: the ResNet's own file still loads into a ResNet, untouched
    other = MODELS.build(dict(type='ResNet', depth=18, init_cfg=dict(type='Pretrained', checkpoint=path)))
    other.init_weights()
    assert all(torch.equal(v, resnet[k]) for k, v in other.state_dict().items())
    assert load_any_layout(path).keys() == resnet.keys()


def test_a_file_with_a_layouts_keys_that_does_not_fit_names_the_problem(files, tmp_path):
    path, _ = files['timm']
    broken = {k: v for k, v in torch.load(path, weights_only=True).items() if k != 'blocks.1.attn.proj.weight'}
    bad = str(tmp_path / 'broken_timm.pth')
    torch.save(broken, bad)
    with pytest.raises(ConversionError, match=rf'Checkpoint {bad} has the keys of layout timm .* but does not '
                       r'fit it: .*missing .*layers\.1\.attn\.proj\.weight'):
        load_checkpoint(MODELS.build(tiny_saim_cfg()), bad)


def test_detect_layout_and_targets():
    saim, _ = official_saim_to_mm(authors_state_dict())
    assert detect_layout({'module.' + k: v for k, v in saim.items()}).name == 'saim_mm'
    backbone, report, layout = to_saim_mm(saim, target='backbone')
    assert layout.name == 'saim_mm' and all(k.startswith('backbone.') for k in backbone)
    assert {k.split('.')[0] for k, _ in report.dropped} == {'neck'}
    same, report, _ = to_saim_mm(saim, target='model')
    assert same.keys() == saim.keys() and not report.dropped
    encoder = strip_prefix(backbone, 'backbone.')
    assert detect_layout(encoder).name == 'encoder'
    assert to_saim_mm(encoder)[0].keys() == backbone.keys()
    assert detect_layout(mm_to_timm(encoder)).name == 'timm'
    with pytest.raises(ValueError, match='target must be one of'):
        to_saim_mm(saim, target='neck')


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
