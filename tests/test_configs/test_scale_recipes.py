"""The ViT-S/L/H pre-training configs (plain, FSDP, DeepSpeed) and their ImageNet fine-tuning configs: every
one builds at full size (meta device), has its architecture, and carries the ViT-B recipe except what it
states it changes (README "Scaling up")."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import FUNCTIONS
from mmpretrain.registry import MODELS

import saim_mm  # noqa: F401
from saim_mm.models.utils import SAIMTransformerLayer
from tests.conftest import REPO, tiny_saim_cfg
from tests.data.behaviour_record import build_config_model
from tests.test_configs.test_imagenet_benchmark_recipes import check_common, check_schedule

CONFIG_DIR = osp.join(REPO, 'configs')
GPUS = 8
S = 'saim/saim_vit-small-p16_8xb256-amp-coslr-800e_in1k.py'
L = 'saim/saim_vit-large-p16_8xb256-amp-coslr-800e_in1k.py'
H = 'saim/saim_vit-huge-p14_8xb256-amp-coslr-800e_in1k.py'
L_FSDP, H_FSDP = L.replace('-amp-', '-fsdp-'), H.replace('-amp-', '-fsdp-')
L_DS, H_DS = L.replace('-amp-', '-ds-'), H.replace('-amp-', '-ds-')
FT_S = 'benchmarks/imagenet/vit-small-p16_8xb128-amp-coslr-100e_in1k.py'
FT_L = 'benchmarks/imagenet/vit-large-p16_8xb128-amp-coslr-50e_in1k.py'
FT_H = 'benchmarks/imagenet/vit-huge-p14_8xb128-amp-coslr-50e_in1k.py'

# (width, depth, heads, MLP width, patch, encoder parameters in millions)
ARCH = {
    'S': (384, 12, 6, 1536, 16, 21.7),
    'L': (1024, 24, 16, 4096, 16, 303.3),
    'H': (1280, 32, 16, 5120, 14, 630.8),
}
PRETRAIN = {S: ('S', None, False), L: ('L', 'bfloat16', True), H: ('H', 'bfloat16', True)}
FSDP = {L_FSDP: L, H_FSDP: H}
DEEPSPEED = {L_DS: L, H_DS: H}
FINETUNE = {FT_S: 'S', FT_L: 'L', FT_H: 'H'}
CHECKED_CONFIGS = {
    **{rel: 'ViT-S/L/H pre-training recipe; builds at full size' for rel in PRETRAIN},
    **{rel: 'FSDP (FlexibleRunner) pre-training: the plain config plus the strategy; one FSDP unit per block'
       for rel in FSDP},
    **{rel: 'DeepSpeed (FlexibleRunner) pre-training: the plain config plus ZeRO-1 bf16' for rel in DEEPSPEED},
    **{rel: 'ViT-S/L/H ImageNet fine-tuning recipe; builds at full size' for rel in FINETUNE},
}


def load(rel: str) -> Config:
    return Config.fromfile(osp.join(CONFIG_DIR, rel))


def without(cfg: Config, *keys: str) -> dict:
    d = cfg.to_dict()
    for key in keys:
        d.pop(key, None)
    return d


@pytest.mark.parametrize('rel', sorted(PRETRAIN) + sorted(FSDP) + sorted(DEEPSPEED))
def test_pretrain_model_builds_at_full_size_with_its_architecture(rel):
    base = FSDP.get(rel) or DEEPSPEED.get(rel) or rel
    name, _, with_cp = PRETRAIN[base]
    width, depth, heads, mlp, patch, encoder_m = ARCH[name]
    model = build_config_model(rel)
    enc, dec = model.backbone, model.neck
    assert (enc.embed_dims, enc.num_layers, enc.patch_size, tuple(enc.patch_resolution)) == \
        (width, depth, patch, (224 // patch, 224 // patch))
    assert enc.layers[0].attn.num_heads == heads and enc.layers[0].ffn.layers[0][0].out_features == mlp
    # decoder depth = encoder depth, of the encoder's width, heads and MLP width
    assert dec.num_layers == depth and len(dec.layers) == depth
    assert (dec.embed_dims, dec.layers[0].attn.num_heads, dec.layers[0].ffn.layers[0][0].out_features) == \
        (width, heads, mlp)
    assert dec.predictor.fc2.out_features == patch * patch * 3 and model.head.patch_size == patch
    assert sum(p.numel() for p in enc.parameters()) / 1e6 == pytest.approx(encoder_m, abs=0.1)
    assert all(layer.with_cp == with_cp for layer in [*enc.layers, *dec.layers])


@pytest.mark.parametrize('rel', sorted(PRETRAIN))
def test_pretrain_recipe_is_the_vitb_recipe(rel):
    name, dtype, with_cp = PRETRAIN[rel]
    cfg, vitb = load(rel), load('saim/vitb_800e.py')
    opt = cfg.optim_wrapper
    assert cfg.train_dataloader.batch_size * GPUS * opt.get('accumulative_counts', 1) == 2048
    assert opt.type == 'AmpOptimWrapper' and opt.get('dtype') == dtype  # fp16 (None) for S, bf16 for L/H
    assert opt.optimizer == vitb.optim_wrapper.optimizer  # AdamW, lr 2e-4 x 2048/256, (0.9, 0.95), 0.05
    assert opt.optimizer.lr == pytest.approx(2e-4 * 2048 / 256)
    assert opt.paramwise_cfg == vitb.optim_wrapper.paramwise_cfg
    assert cfg.param_scheduler == vitb.param_scheduler and cfg.train_cfg.max_epochs == 800
    # data, hooks, runtime: vitb_800e.py's
    assert without(cfg, 'model', 'optim_wrapper', 'patch') == without(vitb, 'model', 'optim_wrapper')
    assert cfg.model.backbone.get('with_cp', False) == cfg.model.neck.get('with_cp', False) == with_cp
    assert cfg.model.order == 'stochastic' and cfg.model.neck.predictor == 'mlp'
    assert (cfg.model.head.kernel_size, cfg.model.head.sigma, cfg.model.head.norm_pix) == (9, 1.0, True)


@pytest.mark.parametrize('rel', sorted(FSDP))
def test_fsdp_config_adds_only_the_strategy(rel):
    cfg, plain = load(rel), load(FSDP[rel])
    assert cfg.runner_type == 'FlexibleRunner'
    strategy = cfg.strategy
    assert strategy.type == 'FSDPStrategy' and strategy.state_dict_cfg == 'full'
    assert cfg.optim_wrapper == dict(plain.optim_wrapper, use_fsdp=True)
    assert without(cfg, 'runner_type', 'strategy', 'optim_wrapper') == without(plain, 'optim_wrapper')
    # the auto-wrap policy makes each transformer block one FSDP unit: a block reaches min_num_params,
    # nothing inside it does
    policy = strategy.model_wrapper.auto_wrap_policy
    assert FUNCTIONS.get(policy.type) is torch.distributed.fsdp.wrap.size_based_auto_wrap_policy
    model = build_config_model(rel)
    blocks = [m for m in model.modules() if isinstance(m, SAIMTransformerLayer)]
    assert len(blocks) == 2 * model.backbone.num_layers
    for block in blocks:
        assert sum(p.numel() for p in block.parameters()) >= policy.min_num_params
        inner = max(sum(p.numel() for p in m.parameters()) for m in block.modules() if m is not block)
        assert inner < policy.min_num_params


@pytest.mark.parametrize('rel', sorted(DEEPSPEED))
def test_deepspeed_config_adds_only_the_strategy(rel):
    cfg, plain = load(rel), load(DEEPSPEED[rel])
    assert cfg.runner_type == 'FlexibleRunner'
    s = cfg.strategy
    assert s.type == 'DeepSpeedStrategy' and s.bf16.enabled is True and 'fp16' not in s
    assert s.zero_optimization.stage == 1 and s.inputs_to_half == ['inputs']
    opt = cfg.optim_wrapper
    assert opt.type == 'DeepSpeedOptimWrapper' and 'dtype' not in opt
    assert opt.optimizer == plain.optim_wrapper.optimizer and opt.paramwise_cfg == plain.optim_wrapper.paramwise_cfg
    assert without(cfg, 'runner_type', 'strategy', 'optim_wrapper') == without(plain, 'optim_wrapper')


def test_patch14_at_224_gives_a_16x16_grid_in_encoder_and_target():
    """ViT-H/14's geometry (224 / 14 = 16 patches a side, 588 values per target patch) on a narrow model."""
    cfg = tiny_saim_cfg(img_size=224, patch=14, depth=2, dec_depth=2, embed_dims=16)
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.init_weights()
    assert tuple(model.backbone.patch_resolution) == (16, 16) and model.num_patches == 256
    x = torch.randn(2, 3, 224, 224)
    order = model.sample_order(2, x.device)
    assert model.head.construct_target(x).shape == (2, 256, 14 * 14 * 3)
    pred = model.predict_patches(x, order)
    assert pred.shape == (2, 256, 588)
    loss = model.loss(x, order=order)['loss']
    assert torch.isfinite(loss)
    loss.backward()


@pytest.mark.parametrize('rel', sorted(FINETUNE))
def test_finetune_config_builds_at_full_size(rel):
    width, depth, heads, mlp, patch, encoder_m = ARCH[FINETUNE[rel]]
    model = build_config_model(rel)
    assert (model.backbone.embed_dims, model.backbone.num_layers) == (width, depth)
    assert model.backbone.patch_embed.projection.kernel_size == (patch, patch)
    assert model.head.fc.in_features == width and model.head.fc.out_features == 1000
    assert sum(p.numel() for p in model.backbone.parameters()) / 1e6 == pytest.approx(encoder_m, abs=0.1)


def test_finetune_small_is_the_vitb_recipe():
    cfg, vitb = load(FT_S), load('benchmarks/imagenet/vitb_finetune_100e.py')
    assert cfg.model.backbone.arch == 'deit-small' and cfg.model.head.in_channels == 384
    a, b = cfg.to_dict(), vitb.to_dict()
    for d in (a, b):
        d['model']['backbone'].pop('arch')
        d['model']['head'].pop('in_channels')
    assert a == b


@pytest.mark.parametrize('rel,drop_path', [(FT_L, 0.2), (FT_H, 0.3)])
def test_finetune_large_and_huge_follow_mae(rel, drop_path):
    cfg = load(rel)
    check_common(cfg)
    opt = cfg.optim_wrapper
    assert opt.type == 'AmpOptimWrapper' and opt.dtype == 'bfloat16'
    assert cfg.train_dataloader.batch_size * GPUS * opt.get('accumulative_counts', 1) == 1024
    assert opt.optimizer.lr == pytest.approx(1e-3 * 1024 / 256)
    assert tuple(opt.optimizer.betas) == (0.9, 0.999) and opt.optimizer.weight_decay == 0.05
    assert opt.constructor == 'LearningRateDecayOptimWrapperConstructor'
    assert opt.paramwise_cfg.layer_decay_rate == 0.75
    assert cfg.model.backbone.drop_path_rate == drop_path
    check_schedule(cfg, epochs=50, warmup=5, eta_min=1e-6)
    vitb = load('benchmarks/imagenet/vitb_finetune_100e.py')
    assert cfg.train_dataloader == vitb.train_dataloader and cfg.val_dataloader == vitb.val_dataloader
    assert cfg.model.train_cfg == vitb.model.train_cfg and cfg.model.head.loss == vitb.model.head.loss
