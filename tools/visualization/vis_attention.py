"""Attention maps of the last encoder block of a SAIM checkpoint (the paper's Fig. 2).

For each image, one PNG row: the input, the cls token's attention over the patches averaged over heads,
then each head's map (brighter = more attention). The encoder runs as in transfer: no masks, no order.

    python tools/visualization/vis_attention.py CONFIG CHECKPOINT IMAGE [IMAGE ...] --out-dir DIR

CONFIG may also be a model name of saim_mm's index (``mmpretrain.list_models('*saim*')``); CHECKPOINT may
be in any layout saim_mm reads (saim_mm, the authors' release; see README, "Using a SAIM model").
"""
import argparse
import os
import os.path as osp

from mmpretrain.apis import init_model

from saim_mm.apis import attention_maps, load_image
from saim_mm.visualization import heatmap, tile_row, to_uint8


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='SAIM pre-training config, or a model name of the index')
    parser.add_argument('checkpoint', help='SAIM checkpoint (.pth)')
    parser.add_argument('images', nargs='+', help='image files')
    parser.add_argument('--out-dir', default='work_dirs/vis_attention')
    parser.add_argument('--tile', type=int, default=224, help='side of each panel in pixels')
    parser.add_argument('--device', default='cpu')
    args = parser.parse_args()
    model = init_model(args.config, args.checkpoint, device=args.device)
    os.makedirs(args.out_dir, exist_ok=True)
    h, w = model.backbone.patch_resolution
    for path in args.images:
        x = load_image(path, model)
        attn = attention_maps(model, x)[0, :, 0, 1:]  # (heads, N): cls query -> patches
        maps = attn.reshape(-1, h, w).cpu().numpy()
        size = tuple(x.shape[-2:])
        panels = [to_uint8(x[0], model), heatmap(maps.mean(0), size)] + [heatmap(m, size) for m in maps]
        out = osp.join(args.out_dir, osp.splitext(osp.basename(path))[0] + '_attention.png')
        tile_row(panels, args.tile).save(out)
        print(f'{out}: input, mean over {len(maps)} heads, each head')


if __name__ == '__main__':
    main()
