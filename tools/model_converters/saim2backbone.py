"""SAIM pre-training checkpoint -> backbone-only checkpoint for fine-tuning, probing and dense tasks.

    python tools/model_converters/saim2backbone.py work_dirs/saim_vitb_800e/epoch_800.pth saim_vitb_backbone.pth

Keeps the encoder under ``backbone.`` (mmpretrain ``VisionTransformer`` names) and prints what it drops
(decoder, optimizer state, message hub, ...). Load it with
``--cfg-options model.backbone.init_cfg.checkpoint=saim_vitb_backbone.pth`` in the benchmark configs
(``init_cfg=dict(type='Pretrained', prefix='backbone.')``), or the same ``init_cfg`` in mmdet/mmseg.
"""
import argparse
import os
import os.path as osp

from saim_mm.checkpoint import extract_backbone, load_state_dict_file, save_state_dict_file


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='saim_mm checkpoint (SAIM pre-training, or any model with a backbone)')
    parser.add_argument('dst', help='output .pth')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    state_dict, others = load_state_dict_file(args.src)
    backbone, report = extract_backbone(state_dict)
    report.other_entries = others
    os.makedirs(osp.dirname(osp.abspath(args.dst)), exist_ok=True)
    save_state_dict_file(backbone, args.dst, meta=dict(converted_from=osp.abspath(args.src), arch=report.arch))
    print(f'kept {len(backbone)} backbone tensors of {args.src}')
    for line in report.lines():
        print(line)
    print(f'saved {args.dst}')


if __name__ == '__main__':
    main()
