"""PretrainedTeacher: features of a tiny mmpretrain ViT and a tiny timm ViT read from saved checkpoints equal
their block's patch tokens computed independently; the weights survive a model-wide initialisation and stay
out of the state dict; a file that does not fit names the file, the key and the shapes; a code-running
pickle is refused before it runs."""
import os
import os.path as osp

import pytest
import timm
import torch
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS

import saim_mm  # noqa: F401
from saim_mm.checkpoint import CheckpointLoadError, ConversionError
from saim_mm.models.teachers import PretrainedTeacher

IMG, PATCH, WIDTH = 16, 4, 16


def vit_cfg(width: int = WIDTH, depth: int = 2) -> dict:
    return dict(type='mmpretrain.VisionTransformer', img_size=IMG, patch_size=PATCH,
                arch=dict(embed_dims=width, num_layers=depth, num_heads=2, feedforward_channels=2 * width))


TIMM_CFG = dict(type='timm', model_name='vit_tiny_patch16_224', img_size=IMG, patch_size=PATCH, embed_dim=WIDTH,
                depth=2, num_heads=2)


def saved_vit(path: str, seed: int = 0, **cfg) -> torch.nn.Module:
    torch.manual_seed(seed)
    vit = MODELS.build(vit_cfg(**cfg))
    with torch.no_grad():  # weights away from their initial values (LayerNorms included)
        for p in vit.parameters():
            p.add_(0.1 * torch.randn_like(p))
    torch.save(vit.state_dict(), path)
    vit.eval()
    return vit


@pytest.mark.parametrize('block', [-1, 0])
def test_mmpretrain_vit_features_are_the_block_patch_tokens(tmp_path, block):
    path = str(tmp_path / 'vit.pth')
    vit = saved_vit(path)
    teacher = PretrainedTeacher(model=vit_cfg(), checkpoint=path, block=block)
    vit.out_type, vit.out_indices = 'raw', [block % 2]  # mmpretrain's forward: final norm after the last block
    images = torch.randn(2, 3, IMG, IMG)
    features = teacher(images)
    assert features.shape == (2, 16, WIDTH) and not features.requires_grad
    assert torch.allclose(features, vit(images)[0][:, 1:], rtol=0, atol=1e-6)
    assert teacher.out_channels == WIDTH


def test_mmpretrain_classifier_checkpoint_is_read_from_its_backbone(tmp_path):
    path, wrapped = str(tmp_path / 'vit.pth'), str(tmp_path / 'classifier.pth')
    vit = saved_vit(path)
    state = {'backbone.' + k: v for k, v in torch.load(path).items()}
    torch.save({'state_dict': {**state, 'head.layers.head.weight': torch.zeros(5, WIDTH)}, 'meta': {}}, wrapped)
    teacher = PretrainedTeacher(model=vit_cfg(), checkpoint=wrapped)
    for name, value in vit.state_dict().items():
        assert torch.equal(dict(teacher.model.named_buffers())[name], value), name


def test_timm_vit_features_are_the_block_patch_tokens(tmp_path):
    torch.manual_seed(1)
    cfg = {k: v for k, v in TIMM_CFG.items() if k not in ('type', 'model_name')}
    vit = timm.create_model(TIMM_CFG['model_name'], pretrained=False, num_classes=10, **cfg).eval()
    path = str(tmp_path / 'timm.pth')
    torch.save({'model': vit.state_dict()}, path)  # the classifier head.* is dropped by the teacher
    images = torch.randn(2, 3, IMG, IMG)
    last = PretrainedTeacher(model=TIMM_CFG, checkpoint=path)
    assert torch.allclose(last(images), vit.forward_features(images)[:, vit.num_prefix_tokens:], rtol=0, atol=1e-6)
    with torch.no_grad():  # block 0 by hand: embedding, position, first block, no final norm
        x = vit.blocks[0](vit.norm_pre(vit._pos_embed(vit.patch_embed(images))))
    first = PretrainedTeacher(model=TIMM_CFG, checkpoint=path, block=0)
    assert torch.allclose(first(images), x[:, vit.num_prefix_tokens:], rtol=0, atol=1e-6)


def test_weights_survive_a_model_wide_initialisation_and_stay_out_of_the_state_dict(tmp_path):
    path = str(tmp_path / 'vit.pth')
    vit = saved_vit(path)
    teacher = PretrainedTeacher(model=vit_cfg(), checkpoint=path)
    wrapper = BaseModule(init_cfg=[dict(type='Xavier', layer='Linear'), dict(type='Constant', layer='LayerNorm',
                                                                            val=1.0, bias=0.0)])
    wrapper.teacher = teacher
    wrapper.init_weights()
    weights = dict(teacher.model.named_buffers())
    for name, value in vit.state_dict().items():
        assert torch.equal(weights[name], value), name
    assert teacher.state_dict() == {} and list(teacher.parameters()) == []
    teacher.train()
    assert not any(m.training for m in teacher.modules())


@pytest.mark.parametrize('saved,key,detail', [
    (dict(width=24), 'layers.0.attn.qkv.weight', r'got \[72, 24\], expected \[48, 16\]'),
    (dict(depth=1), 'missing keys', r'layers.1.ln1.weight \[16\]'),
    (dict(depth=3), 'unexpected keys', r'layers.2.ln1.weight \[16\]'),
])
def test_checkpoint_that_does_not_fit_names_the_file_the_key_and_the_shapes(tmp_path, saved, key, detail):
    path = str(tmp_path / 'other.pth')
    saved_vit(path, **saved)
    with pytest.raises(ConversionError, match=rf'(?s){tmp_path}/other.pth.*{key}.*{detail}'):
        PretrainedTeacher(model=vit_cfg(), checkpoint=path)


class RunsCode:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'touch {self.marker}', )


def test_a_pickle_that_would_run_code_is_refused_and_never_runs(tmp_path):
    path, marker = str(tmp_path / 'evil.pth'), str(tmp_path / 'marker')
    torch.save({'state_dict': {'cls_token': torch.zeros(1)}, 'payload': RunsCode(marker)}, path)
    with pytest.raises(CheckpointLoadError, match='Refusing to load checkpoint .*evil.pth'):
        PretrainedTeacher(model=vit_cfg(), checkpoint=path)
    assert not osp.exists(marker)


def test_bad_model_or_block_is_refused(tmp_path):
    path = str(tmp_path / 'vit.pth')
    saved_vit(path)
    with pytest.raises(ValueError, match=r'teacher.block=2 is not a block of a ViT of 2 blocks'):
        PretrainedTeacher(model=vit_cfg(), checkpoint=path, block=2)
    with pytest.raises(TypeError, match=r"teacher.model.type='mmpretrain.ResNet' builds a ResNet"):
        PretrainedTeacher(model=dict(type='mmpretrain.ResNet', depth=18), checkpoint=path)
    with pytest.raises(ValueError, match=r"teacher.model of type 'timm' needs model_name"):
        PretrainedTeacher(model=dict(type='timm'), checkpoint=path)
