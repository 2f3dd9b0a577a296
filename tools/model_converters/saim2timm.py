"""saim_mm encoder <-> timm VisionTransformer state dict (e.g. vit_base_patch16_224), .pth or .safetensors.

    python tools/model_converters/saim2timm.py saim_ckpt.pth vit_base_saim.safetensors
    python tools/model_converters/saim2timm.py timm_vit.safetensors saim_backbone.pth --reverse

Forward: the encoder of any saim_mm checkpoint (SAIM pre-training, backbone-only, classifier; keys under
``backbone.``, or a bare encoder) becomes timm's names (``patch_embed.proj``, ``blocks.N.{norm1,attn.qkv,
attn.proj,norm2,mlp.fc1,mlp.fc2}``, ``norm``); load it with
``timm.create_model('vit_base_patch16_224', num_classes=0).load_state_dict(sd)``. The output is a flat
state dict (``.safetensors``) or ``torch.save`` of it (``.pth``). Reverse: a timm ViT state dict becomes a
backbone-only saim_mm checkpoint (``backbone.*``, loadable with ``init_cfg=dict(type='Pretrained',
prefix='backbone.')``); timm's classifier head is dropped and reported. Tensors are renamed, never changed.
"""
import argparse
import os
import os.path as osp
import sys

from saim_mm.checkpoint import (ConversionReport, extract_backbone, load_state_dict_file, mm_to_timm,
                                save_state_dict_file, strip_prefix, timm_to_mm)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='input checkpoint (.pth or .safetensors)')
    parser.add_argument('dst', help='output: .safetensors or .pth')
    parser.add_argument('--reverse', action='store_true', help='timm -> saim_mm backbone checkpoint')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.reverse and args.dst.endswith('.safetensors'):
        sys.exit('--reverse writes a saim_mm (mmengine) checkpoint for init_cfg=dict(type="Pretrained"): '
                 'give a .pth output.')
    state_dict, others = load_state_dict_file(args.src)
    os.makedirs(osp.dirname(osp.abspath(args.dst)), exist_ok=True)
    if args.reverse:
        encoder, report = timm_to_mm(state_dict)
        save_state_dict_file({'backbone.' + k: v for k, v in encoder.items()}, args.dst,
                             meta=dict(converted_from=osp.abspath(args.src)))
    else:
        report = ConversionReport()
        if any(k.startswith('backbone.') for k in state_dict):
            state_dict, report = extract_backbone(state_dict)
            state_dict = strip_prefix(state_dict, 'backbone.')
        # a flat state dict (timm's load_state_dict takes it as it is), .safetensors or torch.save
        save_state_dict_file(mm_to_timm(state_dict), args.dst, meta=dict(converted_from=osp.abspath(args.src)),
                             wrap=False)
    report.other_entries = others
    for line in report.lines():
        print(line)
    print(f'saved {args.dst}')


if __name__ == '__main__':
    main()
