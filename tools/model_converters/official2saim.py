"""The authors' released SAIM checkpoint (qiy20/SAIM) -> a complete saim_mm SAIM checkpoint.

    python tools/model_converters/official2saim.py saim_base_800ep.pth saim_vitb_800e_mm.pth \
        [--config configs/saim/vitb_800e.py] [--num-heads 12] [--query-depth 12]

Maps their encoder (``blocks``), query stream (``query_blocks``), decoder norm and prediction head onto
``SAIMViT`` / ``SAIMDecoder`` (q, k, v fused into qkv), adds the identity final encoder norm their
pre-training model does not have, and prints the architecture it read and the model config that fits it
(a ``model = dict(...)`` line to paste, as it is, into a config inheriting
``configs/_base_/models/saim_vit-base-p16.py``). With ``--config`` the result is checked key by key and
shape by shape against that config's model. The output resumes nothing (no optimizer); use it with
``load_from``, the visualization tools, or ``saim2backbone.py`` for fine-tuning. saim_mm also reads their
file directly, converting it in memory wherever a checkpoint is loaded (README, "Using a SAIM model");
this tool writes the converted file.

``--final-norm decoder`` copies their decoder norm (``norm``) into the encoder's final norm
(``backbone.ln1``, unused in pre-training): their fine-tuning and probing code loads ``norm`` into the
ViT's final norm, since both have that name (README, "Paper vs the authors' release"). The default,
``identity``, is what saim_mm's own pre-training transfers.
"""
import argparse
import math
import os
import os.path as osp

from saim_mm.checkpoint import check_state_dict, load_state_dict_file, official_saim_to_mm, save_state_dict_file


def saim_model_cfg(arch: dict, num_heads: int) -> dict:
    """``model`` overrides, as they are, for a config inheriting ``configs/_base_/models/saim_vit-base-p16.py``
    (``arch``: the report of ``official_saim_to_mm``; the decoder's sizes default to the encoder's)."""
    p, side = arch['patch_size'], int(round(math.sqrt(arch['num_tokens'] - 1)))
    encoder = dict(_delete_=True, embed_dims=arch['embed_dims'], num_layers=arch['depth'], num_heads=num_heads,
                   feedforward_channels=arch['hidden'])
    return dict(backbone=dict(arch=encoder, img_size=side * p, patch_size=p),
                neck=dict(num_layers=arch['query_depth'], share_encoder_weights=arch['share_encoder_weights'],
                          predictor=arch['predictor']),
                head=dict(patch_size=p, kernel_size=arch['kernel_size'],
                          sigma=None if arch['sigma'] is None else round(arch['sigma'], 6)))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='their checkpoint (.pth with a "model" entry, or a plain state dict)')
    parser.add_argument('dst', help='output .pth (mmengine checkpoint with state_dict and meta)')
    parser.add_argument('--config', help='check the result against the model of this saim_mm config')
    parser.add_argument('--num-heads', type=int, help='attention heads (not stored in weights); '
                        'default: width / 64 (12 for ViT-B)')
    parser.add_argument('--query-depth', type=int,
                        help='decoder depth of a shared-weight model (not stored in its weights)')
    parser.add_argument('--final-norm', choices=['identity', 'decoder'], default='identity',
                        help="encoder's final norm: the identity (saim_mm), or their decoder norm (what their "
                        'fine-tuning code loads)')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    state_dict, others = load_state_dict_file(args.src, allow_namespace=True)
    converted, report = official_saim_to_mm(state_dict, query_depth=args.query_depth)
    report.other_entries = others
    if args.final_norm == 'decoder':
        for part in ('weight', 'bias'):
            converted[f'backbone.ln1.{part}'] = converted[f'neck.ln.{part}'].clone()
        report.added = [(k, 'copy of neck.ln (their decoder norm), as their fine-tuning loads it')
                        if k.startswith('backbone.ln1.') else (k, why) for k, why in report.added]
    heads = args.num_heads or max(report.arch['embed_dims'] // 64, 1)
    if args.config:
        from mmengine.config import Config
        from mmpretrain.registry import MODELS

        import saim_mm  # noqa: F401
        model = MODELS.build(Config.fromfile(args.config).model)
        check_state_dict(converted, {k: tuple(v.shape) for k, v in model.state_dict().items()},
                         f'{args.src} converted for {args.config}')
        print(f'fits the model of {args.config} (every key and shape)')
    os.makedirs(osp.dirname(osp.abspath(args.dst)), exist_ok=True)
    save_state_dict_file(converted, args.dst, meta=dict(converted_from=osp.abspath(args.src), arch=report.arch))
    for line in report.lines():
        print(line)
    print(f'model config that fits (num_heads={heads} assumed), for a config inheriting '
          f'configs/_base_/models/saim_vit-base-p16.py:')
    print(f'model = {saim_model_cfg(report.arch, heads)!r}')
    print(f'saved {args.dst}')


if __name__ == '__main__':
    main()
