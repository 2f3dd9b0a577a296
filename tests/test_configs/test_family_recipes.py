"""configs/saim/family/: AIM-, SemAIM-, D-iGPT- and NEPA-style pre-training as config keys of ``SAIM``.

Each ViT-B config inherits vitb_800e.py and differs from it exactly in the method's keys and the recipe
values that docs/recipes.md cites; its model builds at full size (meta device) with the method's structure.
Each CPU demo config inherits demo_cpu.py, changes only the method's keys (and its work dir), and trains two
iterations on made images.
"""
import copy
import os.path as osp
import re
import uuid

import pytest
import torch
from mmengine.runner import Runner
from mmpretrain.registry import MODELS

import saim_mm  # noqa: F401
from saim_mm.checkpoint import CheckpointNotFoundError
from saim_mm.models.utils import PrefixCausalAttention
from tests.conftest import REPO
from tests.test_configs.test_ablation_recipes import flatten, load
from tests.test_configs.test_pretrain_recipes import check_pretrain_recipe

M = '<missing>'
VITB, DEMO = 'saim/vitb_800e.py', 'saim/demo_cpu.py'
# GaussianPixelLoss keys that a feature target does not have
PIXEL_HEAD_GONE = {'model.head.kernel_size': M, 'model.head.sigma': M, 'model.head.norm_pix': M,
                   'model.head.loss.type': M, 'model.head.loss.criterion': M}
SAIM_DECODER_GONE = {'model.neck.num_layers': M, 'model.neck.share_encoder_weights': M, 'model.neck.predictor': M}


def with_crop_scale(pipeline: list, low: float) -> list:
    """``pipeline`` with the RandomResizedCrop scale range (low, 1.0)."""
    out = copy.deepcopy(pipeline)
    crop = next(t for t in out if t['type'] == 'RandomResizedCrop')
    crop['crop_ratio_range'] = (low, 1.0)
    return out


def warmup_cosine(epochs: int, warmup: int) -> list:
    return [dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0, end=warmup, convert_to_iter_based=True),
            dict(type='CosineAnnealingLR', T_max=epochs - warmup, eta_min=0.0, by_epoch=True, begin=warmup,
                 end=epochs, convert_to_iter_based=True)]


SAIM_PIPELINE = load(VITB).train_pipeline
CROP_02 = with_crop_scale(SAIM_PIPELINE, 0.2)
AIM = {
    'model.order': 'raster',
    'model.backbone.layer_cfgs.attn_cfg.type': 'PrefixCausalAttention',
    'model.neck.type': 'MLPPredictionNeck', **SAIM_DECODER_GONE,
    'model.head.kernel_size': None,
}
SEMAIM = {
    'model.order': M, 'model.order.type': 'SemanticOrder', 'model.order.source': 'teacher',
    'model.head.type': 'FeatureTargetHead', **PIXEL_HEAD_GONE, 'model.head.loss': 'normalized_l2',
    'model.head.teacher.type': 'EMATeacher', 'model.head.teacher.momentum': 1e-3,
    'model.head.teacher.end_momentum': 1e-4,
}
NEPA = {
    'model.order': 'raster', 'model.neck.num_layers': 0, 'model.neck.predictor': 'linear',
    'model.head.type': 'FeatureTargetHead', **PIXEL_HEAD_GONE, 'model.head.loss': 'cosine',
    'model.head.teacher.type': 'PatchEmbedTeacher',
}
DIGPT = {
    'model.order': M, 'model.order.type': 'RandomSegmentOrder', 'model.neck.num_layers': 2,
    'model.neck.predictor': 'linear', 'model.head.type': 'FeatureTargetHead', **PIXEL_HEAD_GONE,
    'model.head.loss': 'cosine', 'model.head.teacher.type': 'PretrainedTeacher', 'model.head.teacher.block': -1,
}
# config -> the keys that differ from vitb_800e.py (the method's, then the cited recipe values)
FAMILY = {
    'aim_vitb_800e.py': {**AIM, 'model.neck.num_blocks': 12, 'model.neck.hidden_dims': 2048, 'model.neck.mlp_ratio': 4},
    'semaim_vitb_800e.py': {**SEMAIM, 'train_pipeline': CROP_02,
                            'train_dataloader.dataset.pipeline': CROP_02, 'optim_wrapper.clip_grad.max_norm': 3.0},
    'nepa_vitb_800e.py': NEPA,
    'digpt_vitb_300e.py': {
        **DIGPT, 'model.order.segment': (7, 7), 'model.neck.embed_dims': 1024, 'model.neck.num_heads': 32,
        'model.neck.feedforward_channels': 4096, 'model.head.teacher.model.type': 'timm',
        'model.head.teacher.model.model_name': 'vit_base_patch16_clip_224.openai',
        'model.head.teacher.checkpoint': 'data/teachers/vit_base_patch16_clip_224.openai.safetensors',
        'max_epochs': 300, 'warmup_epochs': 40, 'base_lr': 1.5e-4, 'total_batch': 4096,
        'train_cfg.max_epochs': 300, 'param_scheduler': warmup_cosine(300, 40),
        'optim_wrapper.optimizer.lr': 1.5e-4 * 4096 / 256, 'optim_wrapper.accumulative_counts': 2,
        'auto_scale_lr.base_batch_size': 4096, 'train_pipeline': CROP_02,
        'train_dataloader.dataset.pipeline': CROP_02},
}
DEMO_ARCH = {'model.head.teacher.model.arch.' + k: v for k, v in dict(
    embed_dims=96, num_layers=4, num_heads=3, feedforward_channels=384).items()}
# demo config -> the keys that differ from demo_cpu.py (the method's at the demo's size, and the work dir)
DEMOS = {
    'demo/aim.py': {**AIM, 'model.neck.num_blocks': 4, 'model.neck.hidden_dims': 128, 'model.neck.mlp_ratio': 4},
    'demo/semaim.py': SEMAIM,
    'demo/nepa.py': NEPA,
    'demo/digpt.py': {
        **DIGPT, 'model.order.segment': (4, 4), 'model.neck.embed_dims': 128, 'model.neck.num_heads': 4,
        'model.neck.feedforward_channels': 512, 'model.head.teacher.model.type': 'SAIMViT', **DEMO_ARCH,
        'model.head.teacher.model.img_size': 32, 'model.head.teacher.model.patch_size': 4,
        'model.head.teacher.checkpoint': 'work_dirs/demo_cpu/epoch_30.pth'},
}
CHECKED_CONFIGS = {
    **{f'saim/family/{name}': 'family ViT-B: diff against vitb_800e.py, full-size meta build' for name in FAMILY},
    **{f'saim/family/{name}': 'family CPU demo: diff against demo_cpu.py, two training iterations' for name in DEMOS},
}


def as_lists(d: dict) -> dict:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}


def changed_keys(parent: str, rel: str) -> dict:
    """The flattened keys whose values differ between configs/<parent> and configs/<rel> (tuples as lists)."""
    base, cfg = flatten(load(parent).to_dict()), flatten(load(rel).to_dict())
    return as_lists({k: cfg.get(k, M) for k in set(base) | set(cfg) if base.get(k, M) != cfg.get(k, M)})


@pytest.mark.parametrize('name', sorted(FAMILY))
def test_vitb_config_differs_from_vitb_800e_in_the_method_and_its_cited_recipe_only(name):
    changed = changed_keys(VITB, f'saim/family/{name}')
    assert changed == as_lists(FAMILY[name])


@pytest.mark.parametrize('name', ['aim_vitb_800e.py', 'nepa_vitb_800e.py'])
def test_vitb_config_without_a_vitb_recipe_of_its_own_keeps_saims(name):
    check_pretrain_recipe(load(f'saim/family/{name}'), epochs=800)


def test_digpt_total_batch_and_lr():
    cfg = load('saim/family/digpt_vitb_300e.py')
    opt = cfg.optim_wrapper
    assert cfg.train_dataloader.batch_size * 8 * opt.accumulative_counts == 4096  # 8 GPUs
    assert opt.optimizer.lr == pytest.approx(2.4e-3)
    assert tuple(opt.optimizer.betas) == (0.9, 0.95) and opt.optimizer.weight_decay == 0.05


@pytest.fixture(scope='module')
def meta_clip_file(tmp_path_factory) -> str:
    """A state dict of timm's CLIP ViT-B/16 made of meta tensors: its keys and shapes, no data."""
    import timm
    with torch.device('meta'):
        vit = timm.create_model('vit_base_patch16_clip_224.openai', pretrained=False, num_classes=0)
    path = str(tmp_path_factory.mktemp('teacher') / 'clip_b16_meta.pth')
    torch.save(vit.state_dict(), path)
    return path


def build_on_meta(rel: str, teacher_file: str = None) -> torch.nn.Module:
    cfg = load(rel)
    if teacher_file is not None:
        cfg.model.head.teacher.checkpoint = teacher_file
    with torch.device('meta'):
        return MODELS.build(cfg.model)


@pytest.mark.parametrize('name', sorted(FAMILY))
def test_vitb_model_builds_at_full_size_with_the_method_structure(name, meta_clip_file):
    model = build_on_meta(f'saim/family/{name}', meta_clip_file if name.startswith('digpt') else None)
    enc, neck, head = model.backbone, model.neck, model.head
    assert sum(p.numel() for p in enc.parameters()) == 85_798_656  # ViT-B/16 at 224 with its final norm
    assert model.num_patches == 196
    prefix = [isinstance(layer.attn, PrefixCausalAttention) for layer in enc.layers]
    assert all(prefix) if name.startswith('aim') else not any(prefix)
    if name.startswith('aim'):
        assert model.prefix_range == (1, 195)
        assert type(neck).__name__ == 'MLPPredictionNeck' and neck.num_layers == 0
        assert (neck.num_blocks, neck.hidden_dims, neck.feedforward_channels) == (12, 2048, 8192)
        assert neck.fc_out.out_features == 16 * 16 * 3 == head.target_channels
        assert head.kernel is None and head.norm_pix
    if name.startswith('semaim'):
        order = model.order_generator
        assert type(order).__name__ == 'SemanticOrder' and order.source == 'teacher' and order.needs_images
        assert (order.similarity, order.ranking) == ('cls', 'distance')
        teacher = head.teacher
        assert type(teacher).__name__ == 'EMATeacher' and teacher.encoder.embed_dims == 768
        assert (teacher.momentum, teacher.end_momentum, teacher.schedule) == (1e-3, 1e-4, 'cosine')
        assert neck.num_layers == 12 and head.loss_name == 'normalized_l2'
    if name.startswith('nepa'):
        assert type(model.order_generator).__name__ == 'RasterOrder' and neck.num_layers == 0
        assert isinstance(neck.predictor, torch.nn.Linear) and neck.predictor.out_features == 768
        assert type(head.teacher).__name__ == 'PatchEmbedTeacher' and head.loss_name == 'cosine'
    if name.startswith('digpt'):
        assert model.order_generator.segment_size == 49 and model.order_generator.tiles.shape == (4, 49)
        assert (neck.embed_dims, neck.num_layers, neck.context_indices(12)) == (1024, 2, [5, 11])
        assert neck.layers[0].attn.num_heads == 32 and isinstance(neck.predictor, torch.nn.Linear)
        assert neck.predictor.out_features == head.target_channels == 768  # CLIP ViT-B/16's width
        assert head.teacher.is_timm and head.loss_name == 'cosine'
    assert neck.out_channels == head.target_channels


def test_digpt_vitb_without_the_teacher_file_fails_naming_it():
    path = 'data/teachers/vit_base_patch16_clip_224.openai.safetensors'
    if osp.exists(osp.join(REPO, path)):
        pytest.skip(f'{path} is present')
    with pytest.raises(CheckpointNotFoundError, match=re.escape(path)):
        build_on_meta('saim/family/digpt_vitb_300e.py')


@pytest.mark.parametrize('name', sorted(DEMOS))
def test_demo_config_differs_from_demo_cpu_in_the_method_only(name):
    work_dir = f'./work_dirs/family_demo_{osp.splitext(osp.basename(name))[0]}'
    assert changed_keys(DEMO, f'saim/family/{name}') == as_lists({**DEMOS[name], 'work_dir': work_dir})


@pytest.mark.parametrize('name', sorted(DEMOS))
def test_demo_config_trains_two_iterations_on_the_cpu(name, demo_data, tmp_path):
    """32 made images in batches of 16, one epoch; D-iGPT's teacher is a demo-size SAIM encoder saved here."""
    cfg = load(f'saim/family/{name}')
    cfg.merge_from_dict({
        'train_dataloader.dataset.data_root': demo_data, 'train_cfg.max_epochs': 1,
        'train_dataloader.batch_size': 16, 'train_dataloader.num_workers': 0,
        'train_dataloader.persistent_workers': False, 'default_hooks.logger.interval': 1,
        'default_hooks.checkpoint.interval': 1, 'randomness.seed': 0})
    cfg.work_dir = str(tmp_path / 'work')
    cfg.experiment_name = f'test_{uuid.uuid4().hex[:8]}'
    teacher_weights = None
    if name == 'demo/digpt.py':
        torch.manual_seed(1)
        saim = MODELS.build(load(DEMO).model)
        saim.init_weights()
        teacher_weights = {k[len('backbone.'):]: v for k, v in saim.state_dict().items() if k.startswith('backbone.')}
        torch.save({'state_dict': saim.state_dict(), 'meta': {}}, tmp_path / 'epoch_30.pth')
        cfg.model.head.teacher.checkpoint = str(tmp_path / 'epoch_30.pth')
    runner = Runner.from_cfg(cfg)
    before = {k: v.clone() for k, v in runner.model.backbone.state_dict().items()}
    runner.train()
    assert runner.iter == 2
    assert torch.isfinite(torch.tensor(runner.message_hub.get_scalar('train/loss').current()))
    assert osp.exists(osp.join(cfg.work_dir, 'epoch_1.pth'))
    after = runner.model.backbone.state_dict()
    assert not torch.equal(before['layers.0.attn.qkv.weight'], after['layers.0.attn.qkv.weight'])  # it trained
    if teacher_weights is not None:  # the teacher holds the saved encoder, untouched by training
        teacher = runner.model.head.teacher.model
        for key in ('patch_embed.projection.weight', 'layers.3.ffn.layers.1.weight', 'cls_token'):
            assert torch.equal(getattr_path(teacher, key), teacher_weights[key])


def getattr_path(module: torch.nn.Module, path: str) -> torch.Tensor:
    for part in path.split('.'):
        module = getattr(module, part)
    return module
