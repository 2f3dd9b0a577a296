"""The k-NN and attentive-probe configs (configs/benchmarks/) carry their protocols and build."""
import pytest
import torch
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope
from mmpretrain.registry import MODELS

import saim_mm  # noqa: F401
from tests.test_configs.test_imagenet_benchmark_recipes import DEMO_LINEAR, GPUS, LINEAR, Config, load

KNN, DEMO_KNN = 'benchmarks/imagenet/vitb_knn.py', 'benchmarks/demo/knn_cpu.py'
ATTENTIVE, DEMO_ATTENTIVE = 'benchmarks/imagenet/vitb_attentive_90e.py', 'benchmarks/demo/attentive_cpu.py'
CHECKED_CONFIGS = {
    KNN: 'ImageNet k-NN protocol (k=20, T=0.07, train split as memory bank with the test pipeline); builds',
    DEMO_KNN: 'CPU demo: the k-NN protocol on the tiny ViT and the demo images; builds',
    ATTENTIVE: 'ImageNet attentive-probe recipe (every value), frozen encoder on the built model',
    DEMO_ATTENTIVE: 'CPU demo: the linear-probe demo with the attentive head and optimiser; trains the head only',
}


def check_encoder(cfg: Config, out_type: str, frozen: bool = True) -> None:
    backbone = cfg.model.backbone
    assert cfg.model.type == 'ImageClassifier' and backbone.type == 'VisionTransformer'
    assert backbone.out_type == out_type and backbone.final_norm is True  # tokens after the final norm
    depth = 12 if backbone.arch == 'b' else backbone.arch.num_layers
    # k-NN trains nothing, and DDP refuses a model without trainable parameters
    assert backbone.frozen_stages == (depth if frozen else 0)
    assert 'saim_mm' in cfg.custom_imports.imports


def check_demo(cfg: Config) -> None:
    demo = load('saim/demo_cpu.py').model.backbone  # the encoder of the pre-training demo
    backbone = cfg.model.backbone
    assert (backbone.arch, backbone.img_size, backbone.patch_size) == (demo.arch, demo.img_size, demo.patch_size)
    assert cfg.model.data_preprocessor.num_classes == 4
    assert cfg.test_dataloader.dataset.type == 'CustomDataset'
    assert (cfg.test_dataloader.dataset.data_root, cfg.test_dataloader.dataset.data_prefix) == ('data/demo', 'val')
    assert cfg.randomness.seed == 0


def test_knn_protocol():
    cfg = load(KNN)
    check_encoder(cfg, 'cls_token', frozen=False)
    assert cfg.model.backbone.arch == 'b' and cfg.model.backbone.patch_size == 16
    assert cfg.model.neck is None and cfg.model.head is None and cfg.model.backbone.init_cfg is None
    loop = cfg.test_cfg
    assert (loop.type, loop.k, loop.temperature) == ('KNNTestLoop', 20, 0.07)
    memory, queries = loop.memory_dataloader.dataset, cfg.test_dataloader.dataset
    assert (memory.type, memory.data_root, memory.split) == ('ImageNet', 'data/imagenet/', 'train')
    assert (queries.type, queries.data_root, queries.split) == ('ImageNet', 'data/imagenet/', 'val')
    assert memory.pipeline == queries.pipeline  # no augmentation of the bank
    assert [t.type for t in memory.pipeline] == ['CheckedLoadImageFromFile', 'ResizeEdge', 'CenterCrop',
                                                 'PackInputs']
    assert memory.pipeline[1].scale == 256 and memory.pipeline[2].crop_size == 224
    assert loop.memory_dataloader.sampler == dict(type='DefaultSampler', shuffle=False)
    assert cfg.test_evaluator == dict(type='Accuracy', topk=(1, 5), prefix='knn')
    assert cfg.val_evaluator.get('prefix') is None  # the base's dict is not changed with it
    assert cfg.train_dataloader is None and cfg.train_cfg is None and cfg.get('optim_wrapper') is None


def test_demo_knn_keeps_the_protocol():
    cfg, imagenet = load(DEMO_KNN), load(KNN)
    check_encoder(cfg, 'cls_token', frozen=False)
    check_demo(cfg)
    for key in ('type', 'k', 'temperature'):
        assert cfg.test_cfg[key] == imagenet.test_cfg[key]
    memory = cfg.test_cfg.memory_dataloader.dataset
    assert (memory.type, memory.data_root, memory.data_prefix) == ('CustomDataset', 'data/demo', 'train')
    assert memory.pipeline == cfg.test_dataloader.dataset.pipeline
    assert cfg.test_evaluator.prefix == 'knn'


@pytest.mark.parametrize('rel', [KNN, ATTENTIVE])
def test_full_size_models_build_on_the_meta_device(rel):
    cfg = load(rel)
    with torch.device('meta'):
        model = MODELS.build(cfg.model)
    assert sum(p.numel() for p in model.backbone.parameters()) == 85_798_656  # ViT-B/16 at 224 with final norm
    if rel == KNN:
        assert not model.with_neck and not model.with_head
    else:
        assert type(model.head).__name__ == 'AttentiveProbeHead' and model.head.num_heads == 12
        assert model.head.fc.out_features == 1000 and model.head.bn.affine is False


def test_attentive_recipe():
    cfg = load(ATTENTIVE)
    check_encoder(cfg, 'featmap')
    head = cfg.model.head
    assert (head.type, head.num_classes, head.in_channels, head.num_heads) == ('AttentiveProbeHead', 1000, 768, 12)
    assert head.loss.type == 'CrossEntropyLoss' and cfg.model.neck is None
    assert cfg.model.backbone.init_cfg == dict(type='Pretrained', checkpoint=None, prefix='backbone.')
    assert any(h.type == 'PretrainedInitCheckHook' for h in cfg.custom_hooks)
    total = cfg.train_dataloader.batch_size * GPUS
    assert total == 1024 and cfg.auto_scale_lr.base_batch_size == total
    opt = cfg.optim_wrapper
    assert opt.type == 'AmpOptimWrapper' and opt.optimizer.type == 'AdamW'
    assert opt.optimizer.lr == pytest.approx(1e-3 * total / 256) and opt.optimizer.weight_decay == 0.05
    linear = load(LINEAR)
    for key in ('param_scheduler', 'train_cfg'):  # the linear probe's: 10 warm-up epochs, cosine, 90 epochs
        assert cfg[key] == linear[key], key
    assert cfg.train_dataloader.dataset == linear.train_dataloader.dataset  # RandomResizedCrop + flip


def test_demo_attentive_is_the_linear_demo_with_the_attentive_recipe():
    cfg, imagenet, linear = load(DEMO_ATTENTIVE), load(ATTENTIVE), load(DEMO_LINEAR)
    check_encoder(cfg, 'featmap')
    check_demo(cfg)
    head, recipe = cfg.model.head, imagenet.model.head
    assert (head.type, head.loss) == (recipe.type, recipe.loss) and cfg.model.neck is None
    assert (head.num_classes, head.in_channels, head.num_heads) == (4, 96, cfg.model.backbone.arch.num_heads)
    opt, recipe_opt = cfg.optim_wrapper.optimizer, imagenet.optim_wrapper.optimizer
    assert {k: v for k, v in opt.items() if k != 'lr'} == {k: v for k, v in recipe_opt.items() if k != 'lr'}
    for key in ('train_dataloader', 'val_dataloader', 'param_scheduler', 'train_cfg'):
        assert cfg[key] == linear[key], key
    model = MODELS.build(cfg.model)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        build_optim_wrapper(model, cfg.optim_wrapper)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable == ['head.query', 'head.kv.weight', 'head.kv.bias', 'head.fc.weight', 'head.fc.bias']
