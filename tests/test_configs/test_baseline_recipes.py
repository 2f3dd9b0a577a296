"""configs/baselines/: mmpretrain's own MAE at the size of the SAIM CPU demo (small_study's MAE row).

The model is mmpretrain's MAE base config with only sizes changed, and they are the SAIM demo's encoder;
everything but the model (data, batch, epochs, optimiser, schedule, hooks) is the SAIM demo's.
"""
import torch
from mmengine.hub import get_config
from mmpretrain.models import MAE, MAEPretrainDecoder, MAEPretrainHead, MAEViT, VisionTransformer
from mmpretrain.registry import MODELS

import saim_mm  # noqa: F401
from tests.test_configs.test_ablation_recipes import flatten, load

MAE_DEMO = 'baselines/mae_vit-demo-p4_cpu.py'
CHECKED_CONFIGS = {MAE_DEMO: "mmpretrain's MAE model with the SAIM demo's sizes; the demo's training recipe"}
MISSING = '<missing>'


def diff(base: dict, cfg: dict) -> dict:
    """Flattened keys whose values differ (``MISSING`` where a side lacks the key) -> the value in ``cfg``."""
    base, cfg = flatten(base), flatten(cfg)
    return {k: cfg.get(k, MISSING) for k in set(base) | set(cfg) if base.get(k, MISSING) != cfg.get(k, MISSING)}


def test_mae_demo_model_is_mmpretrain_mae_with_only_sizes_changed():
    mmpretrain_mae = get_config('mmpretrain::_base_/models/mae_vit-base-p16.py').model.to_dict()
    cfg, demo = load(MAE_DEMO), load('saim/demo_cpu.py')
    changed = diff(mmpretrain_mae, cfg.model.to_dict())
    sizes = {
        'backbone.arch': MISSING,  # 'b' -> the demo encoder's dict
        **{f'backbone.arch.{k}': v for k, v in demo.model.backbone.arch.items()},
        'backbone.img_size': 32, 'backbone.patch_size': 4,
        'neck.num_patches': 64, 'neck.patch_size': 4, 'neck.embed_dim': 96, 'neck.decoder_embed_dim': 64,
        'neck.decoder_depth': 2, 'neck.decoder_num_heads': 2, 'head.patch_size': 4,
    }
    preprocessor = {f'data_preprocessor.{k}': v for k, v in demo.model.data_preprocessor.items()}
    assert changed == {**sizes, **preprocessor}  # the base has it at the top level, with the data set
    assert cfg.model.backbone.mask_ratio == 0.75 and cfg.model.head.norm_pix is True


def test_mae_demo_trains_with_the_saim_demo_recipe():
    cfg, demo = load(MAE_DEMO), load('saim/demo_cpu.py')
    changed = {k: v for k, v in diff(demo.to_dict(), cfg.to_dict()).items() if not k.startswith('model.')}
    assert changed == {'optim_wrapper.paramwise_cfg.custom_keys.mask_token.decay_mult': 0.0,
                       'work_dir': './work_dirs/mae_vit-demo-p4_cpu', 'decoder_dims': 64, 'decoder_depth': 2,
                       'decoder_heads': 2}


def test_mae_demo_builds_trains_and_reads_as_a_plain_vit():
    cfg = load(MAE_DEMO)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    assert type(model) is MAE and type(model.backbone) is MAEViT
    assert type(model.neck) is MAEPretrainDecoder and type(model.head) is MAEPretrainHead
    loss = model.loss(torch.randn(2, 3, 32, 32), [])['loss']
    loss.backward()
    assert torch.isfinite(loss)
    # the encoder reads as mmpretrain's plain ViT (what small_study probes): its unmasked forward
    kwargs = {k: v for k, v in cfg.model.backbone.items() if k not in ('type', 'mask_ratio')}
    vit = VisionTransformer(**kwargs, out_type='raw')  # MAEViT's default: every token
    vit.load_state_dict(model.backbone.state_dict())
    vit.eval()  # (mmpretrain's ViT.train returns None)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        unmasked = model.eval().extract_feat(x)[-1]
        assert unmasked.shape == (2, 65, 96) and torch.allclose(vit(x)[-1], unmasked, atol=1e-6)
