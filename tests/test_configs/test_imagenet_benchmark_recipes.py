"""The fine-tuning and linear-probing configs (configs/benchmarks/) carry the recipes of
docs/recipes.md."""
import os.path as osp
import uuid

import pytest
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope
from mmpretrain.registry import MODELS

import saim_mm  # noqa: F401
from tests.conftest import REPO

CONFIG_DIR = osp.join(REPO, 'configs')
GPUS = 8
FINETUNE, LINEAR = 'benchmarks/imagenet/vitb_finetune_100e.py', 'benchmarks/imagenet/vitb_linear_90e.py'
DEMO_FINETUNE, DEMO_LINEAR = 'benchmarks/demo/finetune_cpu.py', 'benchmarks/demo/linear_cpu.py'
CHECKED_CONFIGS = {
    FINETUNE: 'ImageNet fine-tuning recipe (every value) and layer-wise lr decay on the built model',
    LINEAR: 'ImageNet linear-probe recipe (every value), frozen encoder on the built model',
    DEMO_FINETUNE: 'CPU demo: the fine-tuning recipe on the tiny ViT; builds',
    DEMO_LINEAR: 'CPU demo: the linear-probe recipe on the tiny ViT; builds',
}


def load(rel: str) -> Config:
    return Config.fromfile(osp.join(CONFIG_DIR, rel))


def step(pipeline, name):
    found = [t for t in pipeline if t.type == name]
    assert len(found) == 1, f'{name} in {[t.type for t in pipeline]}'
    return found[0]


def check_common(cfg: Config) -> None:
    backbone = cfg.model.backbone
    assert cfg.model.type == 'ImageClassifier'
    assert backbone.type == 'VisionTransformer'  # mmpretrain's; SAIMViT has the same parameter names
    assert backbone.out_type == 'cls_token' and backbone.final_norm is True  # cls token after the final norm
    assert backbone.init_cfg == dict(type='Pretrained', checkpoint=None, prefix='backbone.')
    assert 'saim_mm' in cfg.custom_imports.imports
    assert any(h.type == 'PretrainedInitCheckHook' for h in cfg.custom_hooks)
    assert cfg.val_evaluator.type == 'Accuracy'
    assert cfg.model.head.type == 'LinearClsHead'


def check_imagenet(cfg: Config, num_layers: int = 12) -> None:
    backbone = cfg.model.backbone
    assert backbone.arch == 'b' and backbone.patch_size == 16 and backbone.img_size == 224
    assert cfg.model.head.num_classes == 1000 and cfg.model.head.in_channels == 768
    assert cfg.model.data_preprocessor.num_classes == 1000
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        assert loader.dataset.type == 'ImageNet' and loader.dataset.data_root == 'data/imagenet/'
    assert cfg.train_dataloader.dataset.split == 'train' and cfg.val_dataloader.dataset.split == 'val'
    crop = step(cfg.train_dataloader.dataset.pipeline, 'RandomResizedCrop')
    assert crop.scale == 224 and crop.interpolation == 'bicubic'
    assert step(cfg.train_dataloader.dataset.pipeline, 'RandomFlip').prob == 0.5
    test = cfg.val_dataloader.dataset.pipeline
    resize = step(test, 'ResizeEdge')
    assert (resize.scale, resize.edge, resize.interpolation) == (256, 'short', 'bicubic')
    assert step(test, 'CenterCrop').crop_size == 224
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    assert cfg.randomness.diff_rank_seed is True


def check_schedule(cfg: Config, epochs: int, warmup: int, eta_min: float) -> None:
    assert cfg.train_cfg.max_epochs == epochs
    lin, cos = cfg.param_scheduler
    assert (lin.type, lin.begin, lin.end, lin.by_epoch) == ('LinearLR', 0, warmup, True)
    assert (cos.type, cos.begin, cos.end, cos.T_max, cos.by_epoch) == ('CosineAnnealingLR', warmup, epochs,
                                                                        epochs - warmup, True)
    assert cos.eta_min == eta_min


def check_finetune_recipe(cfg: Config) -> None:
    check_common(cfg)
    opt = cfg.optim_wrapper
    assert opt.optimizer.type == 'AdamW' and opt.optimizer.weight_decay == 0.05
    assert opt.constructor == 'LearningRateDecayOptimWrapperConstructor'
    assert opt.paramwise_cfg.layer_decay_rate == 0.65
    assert opt.paramwise_cfg.flat_decay_mult == 0.0
    assert cfg.model.backbone.drop_path_rate == 0.1
    pipeline = cfg.train_dataloader.dataset.pipeline
    ra = step(pipeline, 'RandAugment')
    assert (ra.policies, ra.num_policies, ra.magnitude_level, ra.magnitude_std, ra.total_level) == \
        ('timm_increasing', 2, 9, 0.5, 10)
    assert ra.hparams.interpolation == 'bicubic'
    erase = step(pipeline, 'RandomErasing')
    assert erase.erase_prob == 0.25 and erase.mode == 'rand'
    augments = {a.type: a.alpha for a in cfg.model.train_cfg.augments}
    assert augments == {'Mixup': 0.8, 'CutMix': 1.0}
    loss = cfg.model.head.loss
    assert loss.type == 'LabelSmoothLoss' and loss.label_smooth_val == 0.1
    assert cfg.model.neck is None


def check_linear_recipe(cfg: Config) -> None:
    check_common(cfg)
    opt = cfg.optim_wrapper
    assert opt.optimizer.type == 'LARS' and opt.optimizer.weight_decay == 0.0 and opt.optimizer.momentum == 0.9
    assert 'constructor' not in opt and 'paramwise_cfg' not in opt
    assert cfg.model.neck.type == 'ClsBatchNormNeck'
    assert cfg.model.head.loss.type == 'CrossEntropyLoss'
    assert 'augments' not in cfg.model.get('train_cfg', {}) or not cfg.model.train_cfg.augments
    types = [t.type for t in cfg.train_dataloader.dataset.pipeline]
    assert types == ['CheckedLoadImageFromFile', 'RandomResizedCrop', 'RandomFlip', 'PackInputs']
    assert cfg.model.backbone.get('drop_path_rate', 0) == 0


def test_imagenet_finetune_recipe():
    cfg = load(FINETUNE)
    check_finetune_recipe(cfg)
    check_imagenet(cfg)
    total = cfg.train_dataloader.batch_size * GPUS * cfg.optim_wrapper.get('accumulative_counts', 1)
    assert total == 1024 and cfg.auto_scale_lr.base_batch_size == 1024
    assert cfg.optim_wrapper.optimizer.lr == pytest.approx(5e-4 * 1024 / 256)
    check_schedule(cfg, epochs=100, warmup=20, eta_min=1e-6)
    assert cfg.model.head.loss.mode == 'original'


def test_imagenet_linear_recipe():
    cfg = load(LINEAR)
    check_linear_recipe(cfg)
    check_imagenet(cfg)
    total = cfg.train_dataloader.batch_size * GPUS * cfg.optim_wrapper.get('accumulative_counts', 1)
    assert total == 16384 and cfg.auto_scale_lr.base_batch_size == total
    assert cfg.optim_wrapper.optimizer.lr == pytest.approx(0.1 * total / 256)
    check_schedule(cfg, epochs=90, warmup=10, eta_min=0.0)
    assert cfg.model.backbone.frozen_stages == 12
    assert cfg.model.neck.input_features == 768


def test_demo_configs_keep_the_recipes():
    ft, lin = load(DEMO_FINETUNE), load(DEMO_LINEAR)
    check_finetune_recipe(ft)
    check_linear_recipe(lin)
    demo_pretrain = load('saim/demo_cpu.py').model.backbone
    for cfg in (ft, lin):
        assert cfg.model.backbone.arch == demo_pretrain.arch  # the encoder of the pre-training demo
        assert cfg.model.backbone.img_size == demo_pretrain.img_size
        assert cfg.model.backbone.patch_size == demo_pretrain.patch_size
        assert cfg.model.head.num_classes == cfg.model.data_preprocessor.num_classes == 4
        assert cfg.train_dataloader.dataset.type == 'CustomDataset'
        assert cfg.train_dataloader.dataset.data_root == 'data/demo'
        assert cfg.train_dataloader.dataset.get('with_label', True)
    assert lin.model.backbone.frozen_stages == demo_pretrain.arch.num_layers
    assert lin.optim_wrapper.optimizer.lr == load(LINEAR).optim_wrapper.optimizer.lr  # LARS: the absolute lr
    assert lin.train_cfg.max_epochs == 90 and lin.param_scheduler[0].end == 10
    check_schedule(ft, ft.train_cfg.max_epochs, ft.param_scheduler[0].end, 1e-6)
    check_schedule(lin, lin.train_cfg.max_epochs, lin.param_scheduler[0].end, 0.0)


def build_groups(cfg: Config):
    model = MODELS.build(cfg.model)
    opt_cfg = cfg.optim_wrapper.copy()
    opt_cfg.type = 'OptimWrapper'  # AmpOptimWrapper needs a GPU; the param groups are the same
    with DefaultScope.overwrite_default_scope('mmpretrain'):  # as the Runner does (default_scope)
        wrapper = build_optim_wrapper(model, opt_cfg)
    groups = {}
    for group in wrapper.optimizer.param_groups:
        for p in group['params']:
            groups[id(p)] = group
    return model, wrapper, groups


@pytest.mark.parametrize('rel', [FINETUNE, DEMO_FINETUNE])
def test_layerwise_lr_decay_on_the_built_model(rel):
    cfg = load(rel)
    model, wrapper, groups = build_groups(cfg)
    base = cfg.optim_wrapper.optimizer.lr
    depth = model.backbone.num_layers
    names = dict(model.named_parameters())

    def lr(name):
        return groups[id(names[name])]['lr']

    def wd(name):
        return groups[id(names[name])]['weight_decay']

    # block i (0-based) has layer id i + 1; embeddings 0; head depth + 1; scale 0.65^(depth + 1 - id)
    assert lr('head.fc.weight') == pytest.approx(base)
    assert lr(f'backbone.layers.{depth - 1}.attn.qkv.weight') == pytest.approx(base * 0.65)
    assert lr('backbone.layers.0.ffn.layers.1.weight') == pytest.approx(base * 0.65**depth)
    assert lr('backbone.patch_embed.projection.weight') == pytest.approx(base * 0.65**(depth + 1))
    assert lr('backbone.cls_token') == lr('backbone.pos_embed') == pytest.approx(base * 0.65**(depth + 1))
    assert lr('backbone.ln1.weight') == pytest.approx(base)  # the final norm goes with the head
    for name, p in names.items():
        exempt = p.dim() == 1 or name.endswith(('cls_token', 'pos_embed'))
        assert wd(name) == (0.0 if exempt else 0.05), name
    assert model.backbone.layers[depth - 1].ffn.dropout_layer.drop_prob == pytest.approx(0.1)


@pytest.mark.parametrize('rel', [LINEAR, DEMO_LINEAR])
def test_linear_probe_trains_only_bn_free_head(rel):
    cfg = load(rel)
    model, wrapper, groups = build_groups(cfg)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable == ['head.fc.weight', 'head.fc.bias']  # encoder frozen; BatchNorm without affine
    bn = model.neck.bn
    assert bn.affine is False and bn.eps == 1e-6
    assert type(wrapper.optimizer).__name__ == 'LARS'
    assert all(g['weight_decay'] == 0.0 for g in wrapper.optimizer.param_groups)


@pytest.mark.parametrize('rel', [DEMO_FINETUNE, DEMO_LINEAR])
def test_missing_pretrained_checkpoint_is_a_clear_error(rel, demo_data, tmp_path):
    from mmengine.runner import Runner
    cfg = load(rel)
    cfg.merge_from_dict({'train_dataloader.dataset.data_root': demo_data,
                         'val_dataloader.dataset.data_root': demo_data,
                         'test_dataloader.dataset.data_root': demo_data,
                         'train_dataloader.num_workers': 0, 'val_dataloader.num_workers': 0,
                         'test_dataloader.num_workers': 0})
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[key].persistent_workers = False
    cfg.work_dir = str(tmp_path)
    cfg.experiment_name = f'test_{uuid.uuid4().hex[:8]}'
    runner = Runner.from_cfg(cfg)
    with pytest.raises(ValueError, match=r'model\.backbone\.init_cfg\.checkpoint is not set.*--cfg-options '
                                         r'model\.backbone\.init_cfg\.checkpoint='):
        runner.train()
    # testing a trained model (tools/test.py CONFIG CKPT) needs no pre-trained checkpoint
    import torch
    torch.save({'state_dict': runner.model.state_dict(), 'meta': {}}, tmp_path / 'trained.pth')
    cfg.load_from = str(tmp_path / 'trained.pth')
    cfg.experiment_name = f'test_{uuid.uuid4().hex[:8]}'
    metrics = Runner.from_cfg(cfg).test()
    assert 0 <= metrics['accuracy/top1'] <= 100
