"""Images per second of a config's training data pipeline, per data-loader worker.

Tells how many workers feed one GPU: if the GPU trains at G images/s (tools/analysis/benchmark_pretrain.py)
and one worker delivers w images/s, about G / w workers are needed per GPU.

    # on your data (a folder of class folders, e.g. data/imagenet/train)
    python tools/analysis/benchmark_dataloader.py configs/saim/vitb_800e.py --data-root data/imagenet/train
    # on synthetic ImageNet-like JPEGs (500x375, made in a temporary folder)
    python tools/analysis/benchmark_dataloader.py configs/saim/vitb_800e.py --synthetic 512 --workers 1 2

The pipeline (decode, RandomResizedCrop, flip, packing) and the collate function are the config's;
the dataset is replaced by an unlabelled folder dataset over --data-root. The first batch of every run
(worker start-up) is not timed.
"""
import argparse
import os
import os.path as osp
import statistics
import tempfile
import time

import numpy as np
from mmengine.config import Config
from PIL import Image


def make_synthetic_jpegs(folder: str, count: int, size=(500, 375), seed: int = 0) -> str:
    """Write ``count`` smooth random JPEG images (ImageNet-like size and file size) into ``folder``."""
    rng = np.random.default_rng(seed)
    w, h = size
    os.makedirs(folder, exist_ok=True)
    for i in range(count):
        low = rng.uniform(0, 255, (h // 25 + 1, w // 25 + 1, 3)).astype(np.uint8)
        img = Image.fromarray(low).resize((w, h), Image.BICUBIC)
        noise = rng.normal(0, 12, (h, w, 3))
        arr = np.clip(np.asarray(img, dtype=np.float32) + noise, 0, 255).astype(np.uint8)
        Image.fromarray(arr).save(osp.join(folder, f'{i:06d}.jpg'), quality=90)
    return folder


def build_loader(cfg: Config, data_root: str, workers: int, batch_size: int):
    import saim_mm  # noqa: F401
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    loader_cfg = cfg.train_dataloader.copy()
    loader_cfg.dataset = dict(type='CustomDataset', data_root=data_root, with_label=False,
                              pipeline=cfg.train_dataloader.dataset.pipeline)
    loader_cfg.update(num_workers=workers, batch_size=batch_size, persistent_workers=False,
                      pin_memory=False)
    return Runner.build_dataloader(loader_cfg, seed=0)


def time_loader(loader, num_batches: int) -> dict:
    it = iter(loader)
    next(it)  # start-up, not timed
    times, images = [], 0
    t0 = time.perf_counter()
    for _ in range(num_batches):
        t = time.perf_counter()
        try:
            batch = next(it)
        except StopIteration:
            break
        times.append(time.perf_counter() - t)
        images += len(batch['inputs'])
    total = time.perf_counter() - t0
    return dict(images=images, seconds=total, images_per_s=images / total,
                median_batch_s=statistics.median(times) if times else float('nan'))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', nargs='?', default='configs/saim/vitb_800e.py')
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument('--data-root', help='a folder of images (class sub-folders allowed)')
    src.add_argument('--synthetic', type=int, metavar='N', help='make N 500x375 JPEGs and use them')
    parser.add_argument('--workers', type=int, nargs='+', default=[1, 2])
    parser.add_argument('--batch-size', type=int, default=32)
    parser.add_argument('--num-batches', type=int, default=10, help='timed batches per run')
    parser.add_argument('--out', help='write the results to this JSON file')
    args = parser.parse_args()
    cfg = Config.fromfile(args.config)
    with tempfile.TemporaryDirectory() as tmp:
        root = args.data_root or make_synthetic_jpegs(osp.join(tmp, 'images'), args.synthetic)
        if not osp.isdir(root):
            raise FileNotFoundError(f'--data-root {root!r} is not a folder')
        rows = []
        for workers in args.workers:
            res = time_loader(build_loader(cfg, root, workers, args.batch_size), args.num_batches)
            res.update(workers=workers, per_worker=res['images_per_s'] / max(workers, 1))
            rows.append(res)
    print(f'config: {args.config}  data: {args.data_root or f"{args.synthetic} synthetic 500x375 JPEGs"}  '
          f'CPU cores: {os.cpu_count()}')
    print('workers | images/s | images/s per worker | timed images')
    print('--- | --- | --- | ---')
    for r in rows:
        print(f"{r['workers']} | {r['images_per_s']:.1f} | {r['per_worker']:.1f} | {r['images']}")
    if args.out:
        from saim_mm.analysis import write_results
        write_results(args.out, dict(config=args.config, results=rows))


if __name__ == '__main__':
    main()
