"""Make the small synthetic image set used by the CPU demo, the tests and the tiny transfer runs.

Four classes of procedurally drawn images (disc, square, stripes, checker) in random colours, positions
and sizes over a noisy gradient background, written as PNG files in ImageNet-style class folders::

    OUT/train/<class>/<class>_0000.png ...
    OUT/val/<class>/<class>_0000.png ...

    python tools/misc/make_demo_data.py data/demo [--train-per-class 64] [--val-per-class 16] [--size 48]

The same seed gives the same files; an existing complete set is left as it is.
"""
import argparse
import os
import os.path as osp

import numpy as np
from PIL import Image

CLASSES = ('disc', 'square', 'stripes', 'checker')


def draw(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """One (size, size, 3) uint8 image of class ``kind``."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    bg0, bg1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    t = (xx * np.cos(rng.uniform(0, 6.3)) + yy * np.sin(rng.uniform(0, 6.3)))[..., None]
    img = bg0 * (1 - t) + bg1 * t + rng.normal(0, 8, (size, size, 3))
    fg = rng.uniform(0, 255, 3)
    cx, cy = rng.uniform(0.3, 0.7, 2)
    r = rng.uniform(0.15, 0.3)
    if kind == 'disc':
        region = (xx - cx)**2 + (yy - cy)**2 < r**2
    elif kind == 'square':
        region = (np.abs(xx - cx) < r) & (np.abs(yy - cy) < r)
    elif kind == 'stripes':
        angle, period = rng.uniform(0, np.pi), rng.uniform(0.12, 0.25)
        region = np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period) > 0
    elif kind == 'checker':
        period = rng.uniform(0.12, 0.25)
        region = ((xx // period + yy // period) % 2) == 0
    else:
        raise ValueError(f'unknown class {kind!r}; expected one of {CLASSES}')
    img[region] = fg + rng.normal(0, 8, (int(region.sum()), 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def make_split(out: str, split: str, per_class: int, size: int, seed: int) -> int:
    rng = np.random.default_rng(seed)
    written = 0
    for kind in CLASSES:
        folder = osp.join(out, split, kind)
        os.makedirs(folder, exist_ok=True)
        for i in range(per_class):
            img = draw(kind, size, rng)  # drawn even when the file exists, so the stream stays the same
            path = osp.join(folder, f'{kind}_{i:04d}.png')
            if not osp.exists(path):
                Image.fromarray(img).save(path)
                written += 1
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('out', nargs='?', default='data/demo', help='output folder')
    parser.add_argument('--train-per-class', type=int, default=64)
    parser.add_argument('--val-per-class', type=int, default=16)
    parser.add_argument('--size', type=int, default=48, help='image side in pixels')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    n = make_split(args.out, 'train', args.train_per_class, args.size, args.seed)
    n += make_split(args.out, 'val', args.val_per_class, args.size, args.seed + 1)
    total = len(CLASSES) * (args.train_per_class + args.val_per_class)
    print(f'{args.out}: {total} images in {len(CLASSES)} classes ({n} written now)')


if __name__ == '__main__':
    main()
