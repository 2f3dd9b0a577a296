"""The study's images: a ``root/{train,val}/<class>/`` folder (checked) or the synthetic demo set."""
import inspect
import os
import os.path as osp
import subprocess
import sys
from typing import List, Tuple

import torch
from mmengine.config import Config
from torch import Tensor

from .. import datasets  # noqa: F401  (registers CheckedLoadImageFromFile of the pipelines)
from ..utils.data_roots import check_data_roots

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SPLITS = ('train', 'val')


class ImageFolderError(ValueError):
    """A ``--data-root`` that is not a class-folder data set; the message names the folder."""


def image_extensions() -> Tuple[str, ...]:
    """The file extensions mmpretrain's ``CustomDataset`` reads."""
    from mmpretrain.datasets import CustomDataset
    return tuple(inspect.signature(CustomDataset.__init__).parameters['extensions'].default)


def folder_datasets(root: str) -> Config:
    """Data-loader configs of ``root/train`` and ``root/val`` as mmpretrain ``CustomDataset`` s."""
    return Config({f'{split}_dataloader': dict(dataset=dict(type='CustomDataset', data_root=root, data_prefix=split))
                   for split in SPLITS})


def check_image_folder(root: str) -> List[str]:
    """The class names of a ``root/{train,val}/<class>/`` data set, after checking its layout.

    Raises:
        DataRootNotFoundError: ``root``, ``root/train`` or ``root/val`` is missing
            (:func:`saim_mm.utils.data_roots.check_data_roots`).
        ImageFolderError: a split has no class folders, the class folders of train and val differ, or a
            class folder holds no image.
    """
    check_data_roots(folder_datasets(root), [f'{split}_dataloader' for split in SPLITS])
    extensions = image_extensions()
    classes = {}
    for split in SPLITS:
        folder = osp.join(root, split)
        names = sorted(d for d in os.listdir(folder) if osp.isdir(osp.join(folder, d)))
        if not names:
            raise ImageFolderError(f'{folder} has no class folders: put the images of each class in '
                                   f'{folder}/<class>/.')
        for name in names:
            if not any(f.lower().endswith(extensions) for _, _, files in os.walk(osp.join(folder, name))
                       for f in files):
                raise ImageFolderError(f'class folder {osp.join(folder, name)} holds no image '
                                       f'(extensions read: {", ".join(extensions)}).')
        classes[split] = names
    if classes['train'] != classes['val']:
        only_train = sorted(set(classes['train']) - set(classes['val']))
        only_val = sorted(set(classes['val']) - set(classes['train']))
        raise ImageFolderError(f'the class folders of {osp.join(root, "train")} and {osp.join(root, "val")} '
                               f'differ: only in train: {only_train}, only in val: {only_val}.')
    return classes['train']


def make_synthetic(root: str, train_per_class: int, val_per_class: int) -> str:
    """The 4-class synthetic set of ``tools/misc/make_demo_data.py`` (discs, squares, stripes, checkers) in
    ``root``."""
    subprocess.run([sys.executable, osp.join(REPO, 'tools/misc/make_demo_data.py'), root, '--train-per-class',
                    str(train_per_class), '--val-per-class', str(val_per_class)], check=True,
                   stdout=subprocess.DEVNULL)
    return root


def eval_pipeline(img_size: int) -> list:
    """Fixed, deterministic input of the frozen encoders: short side to ``img_size``, centre crop."""
    return [
        dict(type='CheckedLoadImageFromFile'),
        dict(type='ResizeEdge', scale=img_size, edge='short', backend='pillow', interpolation='bicubic'),
        dict(type='CenterCrop', crop_size=img_size),
        dict(type='PackInputs'),
    ]


def load_images(root: str, split: str, img_size: int) -> Tuple[Tensor, Tensor, List[str]]:
    """Every image of ``root/split/<class>/`` through :func:`eval_pipeline`: (N, 3, S, S) uint8 as
    decoded (BGR), (N,) labels and the class names."""
    from mmengine.dataset import default_collate
    from mmpretrain.datasets import CustomDataset
    dataset = CustomDataset(data_root=root, data_prefix=split, pipeline=eval_pipeline(img_size))
    loader = torch.utils.data.DataLoader(dataset, batch_size=256, collate_fn=default_collate)
    images, labels = [], []
    for batch in loader:
        images.append(batch['inputs'])
        labels.append(torch.cat([s.gt_label for s in batch['data_samples']]))
    return torch.cat(images), torch.cat(labels), list(dataset.metainfo['classes'])
