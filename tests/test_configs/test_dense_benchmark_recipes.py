"""The COCO Mask R-CNN and ADE20K UperNet configs carry the recipes of docs/recipes.md; their ViT-B models
run."""
import os.path as osp
import time

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

import saim_mm  # noqa: F401
from tests.conftest import REPO

GPUS = 8
COCO = 'benchmarks/coco/mask-rcnn_saim-vitb_100e.py'
ADE = 'benchmarks/ade20k/upernet_saim-vitb_160k.py'
COCO_DEMO = 'benchmarks/coco/mask-rcnn_saim-vit-demo_cpu.py'
ADE_DEMO = 'benchmarks/ade20k/upernet_saim-vit-demo_cpu.py'
CHECKED_CONFIGS = {
    COCO: 'Li et al. 2021 Mask R-CNN recipe; ViT-B model builds and runs one image',
    ADE: 'BEiT UperNet recipe; ViT-B model builds and runs one image',
    COCO_DEMO: 'tiny CPU demo: trains and is evaluated by CocoMetric (tests/test_tools/test_dense_transfer_demo.py)',
    ADE_DEMO: 'tiny CPU demo: trains and is evaluated by IoUMetric (tests/test_tools/test_dense_transfer_demo.py)',
}


def load(rel: str) -> Config:
    return Config.fromfile(osp.join(REPO, 'configs', rel))


def test_coco_recipe():
    cfg = load(COCO)
    assert cfg.default_scope == 'mmdet'
    b = cfg.model.backbone
    assert (b.type, b.arch, b.patch_size, b.img_size) == ('mmpretrain.SAIMDenseViT', 'b', 16, 1024)
    assert b.out_indices == [2, 5, 8, 11]  # blocks 3, 6, 9, 12
    assert b.window_size > 0 and b.global_attn_indexes == b.out_indices  # global attention in output blocks
    assert b.out_type == 'featmap' and b.use_rel_pos_bias and b.drop_path_rate == 0.1
    assert b.init_cfg == dict(type='Pretrained', checkpoint=None, prefix='backbone.')
    pyramid, fpn = cfg.model.neck
    assert pyramid.type == 'mmpretrain.ViTPyramidNeck' and tuple(pyramid.scales) == (4, 2, 1, 0.5)
    assert fpn.type == 'FPN' and fpn.in_channels == [768] * 4
    assert cfg.model.type == 'MaskRCNN'
    # 1024^2 large-scale jitter
    steps = {t.type: t for t in cfg.train_dataloader.dataset.pipeline}
    assert tuple(steps['RandomResize'].scale) == (1024, 1024)
    assert tuple(steps['RandomResize'].ratio_range) == (0.1, 2.0)
    assert tuple(steps['RandomCrop'].crop_size) == (1024, 1024)
    assert cfg.model.data_preprocessor.batch_augments[0].size == (1024, 1024)
    assert cfg.train_dataloader.batch_size * GPUS == 64 == cfg.auto_scale_lr.base_batch_size
    assert cfg.optim_wrapper.optimizer.type == 'AdamW'
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    assert cfg.train_cfg.max_epochs == 100
    assert set(cfg.val_evaluator.metric) == {'bbox', 'segm'} and cfg.val_evaluator.type == 'CocoMetric'


@pytest.mark.parametrize('rel', [COCO, ADE, COCO_DEMO, ADE_DEMO])
def test_dense_configs_write_checkpoints_atomically_and_stop_on_non_finite_loss(rel):
    from saim_mm.engine.hooks import AtomicCheckpointHook, NonFiniteLossHook
    cfg = load(rel)
    registry = __import__(f'{cfg.default_scope}.registry', fromlist=['HOOKS']).HOOKS
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        checkpoint = registry.build(cfg.default_hooks.checkpoint)
        custom = [registry.build(h) for h in cfg.custom_hooks]
    assert type(checkpoint) is AtomicCheckpointHook and checkpoint.check_finite
    assert NonFiniteLossHook in {type(h) for h in custom}


@pytest.mark.parametrize('rel', [COCO, ADE, COCO_DEMO, ADE_DEMO])
def test_dense_configs_fix_the_seed_and_the_cpu_demos_use_deterministic_kernels(rel):
    randomness = load(rel).randomness
    assert randomness.seed == 0 and randomness.diff_rank_seed
    assert randomness.get('deterministic', False) == (rel in (COCO_DEMO, ADE_DEMO))


def test_ade20k_recipe():
    cfg = load(ADE)
    assert cfg.default_scope == 'mmseg'
    b = cfg.model.backbone
    assert (b.type, b.arch, b.patch_size, tuple(b.img_size)) == ('mmpretrain.SAIMDenseViT', 'b', 16, (512, 512))
    assert b.out_indices == [3, 5, 7, 11]  # blocks 4, 6, 8, 12
    assert b.get('window_size', 0) == 0 and b.use_rel_pos_bias and b.drop_path_rate == 0.1
    assert b.init_cfg == dict(type='Pretrained', checkpoint=None, prefix='backbone.')
    assert cfg.model.neck.type == 'mmpretrain.ViTPyramidNeck' and tuple(cfg.model.neck.scales) == (4, 2, 1, 0.5)
    assert cfg.model.decode_head.type == 'UPerHead' and cfg.model.decode_head.num_classes == 150
    crop = next(t for t in cfg.train_dataloader.dataset.pipeline if t.type == 'RandomCrop')
    assert tuple(crop.crop_size) == (512, 512)
    assert cfg.train_dataloader.batch_size * GPUS == 16
    opt = cfg.optim_wrapper
    assert opt.optimizer.type == 'AdamW' and opt.constructor == 'mmpretrain.BackboneLayerDecayOptimWrapperConstructor'
    assert opt.paramwise_cfg.layer_decay_rate == 0.65
    warmup, poly = cfg.param_scheduler
    assert (warmup.type, warmup.begin, warmup.end, warmup.by_epoch) == ('LinearLR', 0, 1500, False)
    assert (poly.type, poly.begin, poly.end, poly.by_epoch) == ('PolyLR', 1500, 160000, False)
    assert cfg.train_cfg.type == 'IterBasedTrainLoop' and cfg.train_cfg.max_iters == 160000
    assert cfg.model.test_cfg.mode == 'slide' and tuple(cfg.model.test_cfg.crop_size) == (512, 512)
    assert cfg.val_evaluator.type == 'IoUMetric'
    assert cfg.train_dataloader.dataset.type == 'ADE20KDataset'


def test_demo_configs_keep_the_recipe_structure():
    coco, demo = load(COCO), load(COCO_DEMO)
    assert demo.model.backbone.window_size > 0
    for key in ('use_rel_pos_bias', 'use_cls_token', 'drop_path_rate', 'out_type'):
        assert demo.model.backbone[key] == coco.model.backbone[key], key
    assert demo.model.backbone.global_attn_indexes == [1, 3]
    ade, demo = load(ADE), load(ADE_DEMO)
    assert demo.optim_wrapper.constructor == ade.optim_wrapper.constructor
    assert demo.optim_wrapper.paramwise_cfg == ade.optim_wrapper.paramwise_cfg
    assert demo.model.test_cfg.mode == 'slide'


def build_full(rel: str, scope: str):
    cfg = load(rel)
    cfg.model.backbone.init_cfg = None
    if scope == 'mmdet':
        from mmdet.registry import MODELS
        from mmdet.utils import register_all_modules
    else:
        from mmseg.registry import MODELS
        from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    with DefaultScope.overwrite_default_scope(scope):
        model = MODELS.build(cfg.model)
    model.init_weights()
    return model.eval()


def capture_neck_output(model) -> list:
    """A list that receives the neck's output maps during the next forward (one forward, not two)."""
    feats = []
    model.neck.register_forward_hook(lambda module, args, out: feats.extend(out))
    return feats


def test_full_coco_model_runs_one_image_on_the_cpu():
    from mmdet.structures import DetDataSample
    model = build_full(COCO, 'mmdet')
    assert sum(p.numel() for p in model.backbone.parameters()) > 85e6  # ViT-B
    size = 512  # smaller than the recipe's 1024 to keep the test short; the model is the full one
    img = torch.randint(0, 256, (3, size, size + 64), dtype=torch.uint8)
    sample = DetDataSample(metainfo=dict(img_shape=(size, size + 64), ori_shape=(size, size + 64),
                                         scale_factor=(1.0, 1.0)))
    start = time.time()
    with torch.no_grad():
        data = model.data_preprocessor(dict(inputs=[img], data_samples=[sample]), False)
        feats = capture_neck_output(model)
        result = model.predict(data['inputs'], data['data_samples'])[0]
    print(f'ViT-B Mask R-CNN forward of one {size}x{size + 64} image: {time.time() - start:.1f} s')
    assert [f.shape[-2:] for f in feats] == [(size // s, (size + 64) // s) for s in (4, 8, 16, 32, 64)]
    assert result.pred_instances.bboxes.shape[1] == 4


def test_full_ade20k_model_runs_one_image_on_the_cpu():
    from mmseg.structures import SegDataSample
    model = build_full(ADE, 'mmseg')
    assert sum(p.numel() for p in model.backbone.parameters()) > 85e6
    img = torch.randint(0, 256, (3, 512, 512), dtype=torch.uint8)
    sample = SegDataSample(metainfo=dict(img_shape=(512, 512), ori_shape=(512, 512)))
    start = time.time()
    with torch.no_grad():
        data = model.data_preprocessor(dict(inputs=[img], data_samples=[sample]), False)
        feats = capture_neck_output(model)
        result = model.predict(data['inputs'], data['data_samples'])[0]  # sliding-window test
    print(f'ViT-B UperNet forward of one 512x512 image: {time.time() - start:.1f} s')
    assert [f.shape[-2:] for f in feats] == [(512 // s, 512 // s) for s in (4, 8, 16, 32)]
    assert result.seg_logits.data.shape == (150, 512, 512)
    assert result.pred_sem_seg.data.shape == (1, 512, 512)
