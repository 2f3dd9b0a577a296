"""Record what the models compute, so that a redesign can be tested against the code it replaces.

Two records, written by this script with whatever saim_mm ``import saim_mm`` finds (run it on the code
whose behaviour is to be kept)::

    python tests/data/behaviour_record.py tests/data

- ``config_state_dicts.json``: for every config under ``configs/``, the state-dict keys and shapes of its
  model (built on the meta device, so full-size models cost nothing);
- ``behaviour_record.pth``: tiny models built from a fixed seed: their initial weights, fixed inputs and
  orders, and what they compute (predictions, losses, backbone features, dense-task maps, attention maps).

``tests/test_configs/test_state_dict_record.py`` and ``tests/test_models/test_behaviour_record.py``
compare the current code with these files.
"""
import argparse
import glob
import json
import os.path as osp
import sys
from typing import Callable, Dict

import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY = dict(embed_dims=16, num_layers=4, num_heads=2, feedforward_channels=32)


def config_paths():
    paths = glob.glob(osp.join(REPO, 'configs', '**', '*.py'), recursive=True)
    return sorted(osp.relpath(p, osp.join(REPO, 'configs')) for p in paths if '_base_' not in p.split(osp.sep))


def build_config_model(rel: str) -> torch.nn.Module:
    """The model of ``configs/<rel>`` on the meta device, in the config's default scope."""
    import importlib

    from mmengine.config import Config
    from mmengine.registry import MODELS, DefaultScope
    cfg = Config.fromfile(osp.join(REPO, 'configs', rel))
    scope = cfg.get('default_scope', 'mmpretrain')
    importlib.import_module(f'{scope}.registry')
    backbone = cfg.model.get('backbone', {})
    if isinstance(backbone.get('init_cfg'), dict):
        backbone.init_cfg = None  # nothing is loaded: only the structure counts
    with DefaultScope.overwrite_default_scope(scope), torch.device('meta'):
        return MODELS.build(cfg.model)


def config_state_dicts() -> Dict[str, Dict[str, list]]:
    return {rel: {k: list(v.shape) for k, v in build_config_model(rel).state_dict().items()}
            for rel in config_paths()}


def saim_cfg(**kw) -> dict:
    """A tiny SAIM whose decoder states its sizes (as every version of SAIMDecoder accepts)."""
    dec_depth = kw.pop('dec_depth', 4)
    cfg = dict(
        type='SAIM',
        order=kw.pop('order', 'stochastic'),
        backbone=dict(type='SAIMViT', arch=dict(TINY), img_size=(12, 16), patch_size=4),
        neck=dict(type='SAIMDecoder', embed_dims=16, num_layers=dec_depth, num_heads=2, feedforward_channels=32,
                  patch_size=4, share_encoder_weights=kw.pop('shared', False), predictor=kw.pop('predictor', 'mlp')),
        head=dict(type='GaussianPixelLoss', patch_size=4, kernel_size=kw.pop('kernel_size', 3), sigma=1.0,
                  norm_pix=kw.pop('norm_pix', True),
                  loss=dict(type='PixelReconstructionLoss', criterion=kw.pop('criterion', 'L2'))),
        init_cfg=[dict(type='Xavier', layer='Linear', distribution='uniform'),
                  dict(type='Constant', layer='LayerNorm', val=1.0, bias=0.0)])
    assert not kw, kw
    return cfg


def dense_type() -> str:
    """The detection / segmentation backbone's registry name (``SAIMViT`` before it had a class of its own)."""
    from mmpretrain.registry import MODELS
    return 'SAIMDenseViT' if 'SAIMDenseViT' in MODELS.module_dict else 'SAIMViT'


def dense_cfg(**kw) -> dict:
    return dict(type=dense_type(), arch=dict(TINY), img_size=16, patch_size=4, out_indices=[0, 1, 2, 3],
                out_type='featmap', final_norm=False, use_rel_pos_bias=True, **kw)


def build(cfg: dict, seed: int) -> torch.nn.Module:
    import saim_mm  # noqa: F401
    from mmpretrain.registry import MODELS
    torch.manual_seed(seed)
    model = MODELS.build(cfg)
    model.init_weights()
    return model


def perturb(model: torch.nn.Module, seed: int) -> None:
    """Make zero-initialised parameters (relative position biases, biases) non-trivial."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g, dtype=p.dtype))


def saim_outputs(model, x, order) -> Dict[str, torch.Tensor]:
    return dict(pred=model.predict_patches(x, order), loss=model.loss(x, order=order)['loss'])


def cases() -> Dict[str, Callable]:
    """name -> (config, seed, inputs (B, 3, H, W), function of (model, x) -> dict of outputs)."""

    def order_of(seed, b=2, n=12):
        return torch.rand(b, n, generator=torch.Generator().manual_seed(seed)).argsort(dim=1)

    def saim(seed, **kw):
        return saim_cfg(**kw), seed, (2, 3, 12, 16), lambda m, x: saim_outputs(m, x, order_of(seed))

    def raster(seed, **kw):
        return (saim_cfg(order='raster', **kw), seed, (2, 3, 12, 16),
                lambda m, x: saim_outputs(m, x, torch.arange(12).expand(2, -1)))

    def vis(m, x):
        from saim_mm.apis import attention_maps
        return dict(attention=attention_maps(m, x), features=m.backbone(x)[0])

    plain = dict(type='SAIMViT', arch=dict(TINY), img_size=16, patch_size=4, out_indices=[1, 3],
                 out_type='featmap')

    def variant(seed, neck=None, head=None, order=None):
        cfg = saim_cfg()
        cfg['neck'].update(neck or {})
        cfg['head'] = head or cfg['head']
        cfg['order'] = order or cfg['order']
        return cfg, seed, (2, 3, 12, 16), lambda m, x: dict(
            **saim_outputs(m, x, order_of(seed)), target=m.head.construct_target(x))

    narrow = dict(embed_dims=8, num_heads=2, feedforward_channels=16, num_layers=2, context_layers=[1, 3],
                  predict_ratio=0.5)
    return {
        'saim_stochastic_dec4': saim(0),
        'saim_dec2_linear_l1': saim(1, dec_depth=2, predictor='linear', criterion='L1', norm_pix=False),
        'saim_shared_dec2_no_gauss': saim(2, dec_depth=2, shared=True, kernel_size=None),
        'saim_dec1': saim(3, dec_depth=1),
        'saim_raster_dec0': raster(4, dec_depth=0, kernel_size=None),
        'saim_raster_dec4': raster(5),
        'saim_attention_maps': (saim_cfg(), 6, (1, 3, 12, 16), vis),
        'vit_plain_featmaps': (plain, 7, (2, 3, 20, 16), lambda m, x: dict(out=torch.stack(m(x)))),
        'vit_dense_windows_padded': (dense_cfg(window_size=3, global_attn_indexes=[1], use_cls_token=False),
                                     8, (2, 3, 20, 28), lambda m, x: dict(out=torch.stack(m(x)))),
        'vit_dense_global_cls': (dense_cfg(drop_path_rate=0.1), 9, (1, 3, 24, 16),
                                 lambda m, x: dict(out=torch.stack(m(x)))),
        'saim_gaussian_target': variant(10),
        'saim_segments_linear': variant(11, neck=dict(predictor='linear'),
                                        order=dict(type='RandomSegmentOrder', segment=(1, 2))),
        'saim_narrow_partial': variant(12, neck=narrow),
    }


def run_case(cfg, seed, shape, fn, state_dict=None):
    """Build, (load ``state_dict``), perturb, run in float64 eval mode. Returns (initial weights, inputs, outputs)."""
    model = build(cfg, seed)
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    if state_dict is not None:
        model.load_state_dict(state_dict, strict=True)
    perturb(model, seed)
    model.double()
    model.eval()  # (mmpretrain backbones' train() returns None)
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(100 + seed), dtype=torch.float64)
    with torch.no_grad():
        out = fn(model, x)
    return initial, x, {k: v.detach() for k, v in out.items()}


def behaviour_record() -> dict:
    record = {}
    for name, (cfg, seed, shape, fn) in cases().items():
        initial, x, out = run_case(cfg, seed, shape, fn)
        record[name] = dict(initial=initial, outputs=out)
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('out_dir')
    args = parser.parse_args()
    import saim_mm
    print(f'recording saim_mm from {osp.dirname(saim_mm.__file__)}', file=sys.stderr)
    with open(osp.join(args.out_dir, 'config_state_dicts.json'), 'w') as f:
        json.dump(config_state_dicts(), f, indent=0, sort_keys=True)
    torch.save(behaviour_record(), osp.join(args.out_dir, 'behaviour_record.pth'))


if __name__ == '__main__':
    main()
