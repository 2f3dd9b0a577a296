"""Make a small synthetic ADE20K-format semantic-segmentation set (for tests and the README demo).

Label maps use ADE20K's encoding: 0 = "other" (ignored: mmseg's ``reduce_zero_label`` maps it to 255) and
1..150 the 150 classes. Each image is split into a few background regions of one class each with shapes of
other classes on top; every class has its own colour (plus noise), so a tiny model can learn it. A border
of 0 (ignore) is left around some images. Layout (the one mmseg's ADE20KDataset reads)::

    OUT/images/training/ADE_train_00000000.jpg        OUT/annotations/training/ADE_train_00000000.png
    OUT/images/validation/ADE_val_00000000.jpg        OUT/annotations/validation/ADE_val_00000000.png

    python tools/misc/make_ade20k_demo.py data/ade_demo [--train 32] [--val 8] [--size 64]

The same seed gives the same files.
"""
import os
import os.path as osp
from typing import Tuple

import numpy as np
from PIL import Image, ImageDraw

from saim_mm.utils.demo_data import parse_demo_data_args

NUM_CLASSES = 150
BACKGROUND_CLASSES = (1, 4, 7)   # ADE20K wall, floor, road
OBJECT_CLASSES = (13, 20, 150)   # person, car, flag (the last class, to exercise the full label range)


def class_colours(seed: int = 1234) -> np.ndarray:
    """A fixed colour per label 0..150, shape (151, 3)."""
    return np.random.default_rng(seed).uniform(20, 235, (NUM_CLASSES + 1, 3))


def draw(size: Tuple[int, int], rng: np.random.Generator, colours: np.ndarray):
    """An (h, w, 3) uint8 image and its (h, w) uint8 label map (values 0..150)."""
    h, w = size
    label = np.zeros((h, w), dtype=np.uint8)
    split = int(rng.uniform(0.3, 0.7) * h)
    label[:split] = rng.choice(BACKGROUND_CLASSES)
    label[split:] = rng.choice(BACKGROUND_CLASSES)
    for _ in range(int(rng.integers(1, 4))):
        cls = int(rng.choice(OBJECT_CLASSES))
        r = rng.uniform(0.1, 0.25) * min(h, w)
        cx, cy = rng.uniform(r, w - r), rng.uniform(r, h - r)
        canvas = Image.new('L', (w, h), 0)
        if rng.random() < 0.5:
            ImageDraw.Draw(canvas).ellipse([cx - r, cy - r, cx + r, cy + r], fill=1)
        else:
            ImageDraw.Draw(canvas).rectangle([cx - r, cy - r, cx + r, cy + r], fill=1)
        label[np.array(canvas, dtype=bool)] = cls
    if rng.random() < 0.5:
        b = max(1, min(h, w) // 16)
        label[:b], label[-b:], label[:, :b], label[:, -b:] = 0, 0, 0, 0
    img = colours[label] + rng.normal(0, 10, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8), label


def make_split(out: str, split: str, prefix: str, count: int, size: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    colours = class_colours()
    img_dir = osp.join(out, 'images', split)
    ann_dir = osp.join(out, 'annotations', split)
    os.makedirs(img_dir, exist_ok=True)
    os.makedirs(ann_dir, exist_ok=True)
    for i in range(count):
        hw = (size, int(size * rng.choice([1.0, 1.25, 1.5])))  # some non-square images
        img, label = draw(hw, rng, colours)
        name = f'ADE_{prefix}_{i:08d}'
        Image.fromarray(img).save(osp.join(img_dir, name + '.jpg'), quality=95)
        Image.fromarray(label).save(osp.join(ann_dir, name + '.png'))


def main() -> None:
    args = parse_demo_data_args(__doc__.split('\n')[0])
    make_split(args.out, 'training', 'train', args.train, args.size, args.seed)
    make_split(args.out, 'validation', 'val', args.val, args.size, args.seed + 1)
    print(f'{args.train} training and {args.val} validation images in {args.out}')


if __name__ == '__main__':
    main()
