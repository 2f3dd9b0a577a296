"""Make a small synthetic COCO-format instance-segmentation set (for tests and the README demo).

Each image holds 1-4 objects (discs, squares, triangles) in random colours over a noisy gradient. Squares
and triangles are annotated with polygon masks, discs with compressed RLE masks (pycocotools), so both
mask encodings of COCO are exercised. Layout (the one mmdet's CocoDataset reads)::

    OUT/annotations/instances_train2017.json
    OUT/annotations/instances_val2017.json
    OUT/train2017/000000000000.jpg ...
    OUT/val2017/000000000000.jpg ...

    python tools/misc/make_coco_demo.py data/coco_demo [--train 32] [--val 8] [--size 64]

Categories (ids 1, 2, 3): disc, square, triangle; configs name them with
``metainfo=dict(classes=('disc', 'square', 'triangle'))``. The same seed gives the same files.
"""
import json
import os
import os.path as osp
from typing import List, Tuple

import numpy as np
from PIL import Image, ImageDraw
from pycocotools import mask as mask_utils

from saim_mm.utils.demo_data import parse_demo_data_args

CLASSES = ('disc', 'square', 'triangle')


def background(size: Tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    t = (xx / w * np.cos(rng.uniform(0, 6.3)) + yy / h * np.sin(rng.uniform(0, 6.3)))[..., None]
    img = rng.uniform(0, 255, 3) * (1 - t) + rng.uniform(0, 255, 3) * t + rng.normal(0, 6, (h, w, 3))
    return img


def draw_image(size: Tuple[int, int], rng: np.random.Generator):
    """An (h, w, 3) uint8 image and its annotations (category id, polygon or RLE, bbox, area)."""
    h, w = size
    img = background(size, rng)
    objects = []
    occupied = np.zeros((h, w), dtype=bool)
    for _ in range(int(rng.integers(1, 5))):
        cat = int(rng.integers(0, len(CLASSES)))
        r = rng.uniform(0.12, 0.25) * min(h, w)
        cx, cy = rng.uniform(r, w - r), rng.uniform(r, h - r)
        canvas = Image.new('L', (w, h), 0)
        poly = None
        if CLASSES[cat] == 'disc':
            ImageDraw.Draw(canvas).ellipse([cx - r, cy - r, cx + r, cy + r], fill=1)
        else:
            if CLASSES[cat] == 'square':
                poly = [cx - r, cy - r, cx + r, cy - r, cx + r, cy + r, cx - r, cy + r]
            else:
                poly = [cx, cy - r, cx + r, cy + r, cx - r, cy + r]
            ImageDraw.Draw(canvas).polygon(poly, fill=1)
        m = np.array(canvas, dtype=bool) & ~occupied  # later objects do not cover earlier ones
        if m.sum() < 16:
            continue
        occupied |= m
        img[m] = rng.uniform(0, 255, 3) + rng.normal(0, 6, (int(m.sum()), 3))
        if poly is not None and m.sum() == np.array(canvas, dtype=bool).sum():
            segmentation = [[round(float(v), 2) for v in poly]]
            rle = mask_utils.merge(mask_utils.frPyObjects(segmentation, h, w))  # as COCO's tools see it
        else:  # discs, and any shape clipped by an earlier object: exact RLE of the visible pixels
            rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
            segmentation = {'size': [h, w], 'counts': rle['counts'].decode('ascii')}
        bbox = [float(v) for v in mask_utils.toBbox(rle)]
        objects.append(dict(category_id=cat + 1, segmentation=segmentation, bbox=bbox,
                            area=float(mask_utils.area(rle))))
    return np.clip(img, 0, 255).astype(np.uint8), objects


def make_split(out: str, split: str, count: int, size: int, seed: int) -> str:
    rng = np.random.default_rng(seed)
    folder = osp.join(out, f'{split}2017')
    os.makedirs(folder, exist_ok=True)
    images: List[dict] = []
    annotations: List[dict] = []
    for i in range(count):
        hw = (size, int(size * rng.choice([1.0, 1.25, 0.75])))  # some non-square images
        img, objects = draw_image(hw, rng)
        name = f'{i:012d}.jpg'
        Image.fromarray(img).save(osp.join(folder, name), quality=95)
        images.append(dict(id=i, file_name=name, height=hw[0], width=hw[1]))
        for obj in objects:
            annotations.append(dict(id=len(annotations) + 1, image_id=i, iscrowd=0, **obj))
    ann_file = osp.join(out, 'annotations', f'instances_{split}2017.json')
    os.makedirs(osp.dirname(ann_file), exist_ok=True)
    categories = [dict(id=i + 1, name=c, supercategory='shape') for i, c in enumerate(CLASSES)]
    with open(ann_file, 'w') as f:
        json.dump(dict(images=images, annotations=annotations, categories=categories), f)
    return ann_file


def main() -> None:
    args = parse_demo_data_args(__doc__.split('\n')[0])
    for split, count, seed in (('train', args.train, args.seed), ('val', args.val, args.seed + 1)):
        ann = make_split(args.out, split, count, args.size, seed)
        print(f'{split}: {count} images -> {ann}')


if __name__ == '__main__':
    main()
