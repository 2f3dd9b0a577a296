"""Attention maps of the last encoder block of a SAIM checkpoint (the paper's Fig. 2).

For each image, one PNG row of labelled panels: the input ("input"), the cls token's attention over the
patches averaged over heads ("mean attention"), then each head's map ("head 1" ... "head k"); brighter =
more attention. The encoder runs as in transfer: no masks, no order.

    python tools/visualization/vis_attention.py CONFIG CHECKPOINT IMAGE [IMAGE ...] --out-dir DIR

CONFIG may also be a model name of saim_mm's index (``mmpretrain.list_models('*saim*')``); CHECKPOINT may
be in any layout saim_mm reads (docs/checkpoints.md).
"""
import os
import os.path as osp
from typing import List

from saim_mm.apis import attention_maps, init_saim_model, load_image
from saim_mm.visualization import heatmap, tile_row, to_uint8, vis_arg_parser


def panel_labels(num_heads: int) -> List[str]:
    """The caption of every panel of a row: input, mean attention, head 1 ... head k."""
    return ['input', 'mean attention'] + [f'head {k + 1}' for k in range(num_heads)]


def main() -> None:
    args = vis_arg_parser(__doc__.split('\n')[0], 'work_dirs/vis_attention').parse_args()
    model = init_saim_model(args.config, args.checkpoint, args.device)
    os.makedirs(args.out_dir, exist_ok=True)
    h, w = model.backbone.patch_resolution
    for path in args.images:
        x = load_image(path, model)
        attn = attention_maps(model, x)[0, :, 0, 1:]  # (heads, N): cls query -> patches
        maps = attn.reshape(-1, h, w).cpu().numpy()
        size = tuple(x.shape[-2:])
        panels = [to_uint8(x[0], model), heatmap(maps.mean(0), size)] + [heatmap(m, size) for m in maps]
        out = osp.join(args.out_dir, osp.splitext(osp.basename(path))[0] + '_attention.png')
        labels = panel_labels(len(maps))
        tile_row(panels, args.tile, labels).save(out)
        print(f'{out}: ' + ', '.join(labels))


if __name__ == '__main__':
    main()
