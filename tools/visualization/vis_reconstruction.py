"""SAIM reconstructions (the paper's Fig. 3) and patch-by-patch completion, as PNG files.

``--mode reconstruct`` (default): one row of labelled panels per image: the input ("input"), the
Gaussian-smoothed target ("smoothed target"), the prediction of every patch given the true patches before
it in a random generation order, in one forward pass ("prediction"), and that order ("order": each patch
coloured by its step, dark = early). Norm-pix predictions are shown with the true patch mean/std, as MAE's
visualisation does.

``--mode complete``: the input, what the model is given ("given": ``--keep`` = top rows, left columns or a
random set of patches; the rest grey), and the image generated patch by patch ("completed"): each missing
patch is predicted from everything before it (including earlier predictions) in ``--order`` (raster or
random).

    python tools/visualization/vis_reconstruction.py CONFIG CHECKPOINT IMAGE [...] --out-dir DIR
    python tools/visualization/vis_reconstruction.py CONFIG CHECKPOINT IMAGE --mode complete \\
        --keep top --keep-ratio 0.5 --order raster

CONFIG may also be a model name of saim_mm's index; CHECKPOINT may be in any layout saim_mm reads.
"""
import os
import os.path as osp

import torch

from saim_mm.apis import complete, init_saim_model, load_image, reconstruct
from saim_mm.visualization import order_map, tile_row, to_uint8, vis_arg_parser

KEEP_MODES = ('top', 'left', 'random')


def keep_mask(mode: str, ratio: float, grid, generator: torch.Generator) -> torch.Tensor:
    """(N,) bool in raster order: the patches given to the model."""
    h, w = grid
    rows, cols = torch.meshgrid(torch.arange(h), torch.arange(w), indexing='ij')
    if mode == 'top':
        keep = rows < round(h * ratio)
    elif mode == 'left':
        keep = cols < round(w * ratio)
    else:
        keep = torch.zeros(h * w, dtype=torch.bool)
        keep[torch.randperm(h * w, generator=generator)[:round(h * w * ratio)]] = True
    keep = keep.flatten()
    if keep.all() or not keep.any():
        raise ValueError(f'--keep-ratio {ratio} keeps {int(keep.sum())} of {h * w} patches; '
                         'it must keep some and leave some out.')
    return keep


def main() -> None:
    parser = vis_arg_parser(__doc__.split('\n')[0], 'work_dirs/vis_reconstruction')
    parser.add_argument('--mode', choices=['reconstruct', 'complete'], default='reconstruct')
    parser.add_argument('--keep', choices=KEEP_MODES, default='top')
    parser.add_argument('--keep-ratio', type=float, default=0.5)
    parser.add_argument('--order', choices=['raster', 'random'], default='raster',
                        help='order of the generated patches (complete mode)')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    model = init_saim_model(args.config, args.checkpoint, args.device)
    os.makedirs(args.out_dir, exist_ok=True)
    g = torch.Generator().manual_seed(args.seed)
    grid = model.backbone.patch_resolution
    N = grid[0] * grid[1]
    for path in args.images:
        x = load_image(path, model).to(args.device)
        stem = osp.splitext(osp.basename(path))[0]
        if args.mode == 'reconstruct':
            order = torch.randperm(N, generator=g)[None].to(x.device)
            target, pred = reconstruct(model, x, order)
            panels = [to_uint8(t[0], model) for t in (x, target, pred)]
            panels.append(order_map(order[0], grid, tuple(x.shape[-2:])))
            labels = ['input', 'smoothed target', 'prediction', 'order (dark = early)']
        else:
            keep = keep_mask(args.keep, args.keep_ratio, grid, g).to(x.device)
            missing = (~keep).nonzero().flatten()
            if args.order == 'random':
                missing = missing[torch.randperm(len(missing), generator=g).to(x.device)]
            given = x.clone()
            p = model.backbone.patch_size
            for idx in missing.tolist():  # grey out what the model does not see (for display)
                r, c = divmod(idx, grid[1])
                given[..., r * p:(r + 1) * p, c * p:(c + 1) * p] = 0.0
            done = complete(model, x, keep, missing)
            panels = [to_uint8(t[0], model) for t in (x, given, done)]
            labels = ['input', f'given ({args.keep} {args.keep_ratio:g})',
                      f'completed ({args.order} order)']
        out = osp.join(args.out_dir, f'{stem}_{args.mode}.png')
        tile_row(panels, args.tile, labels).save(out)
        print(f'{out}: ' + ', '.join(labels))


if __name__ == '__main__':
    main()
