"""Stop before the model is built when a config's data set is not where the config says.

mmengine builds the model first and the data loaders when the loop starts; a missing data set then ends
in a ``FileNotFoundError`` traceback from the file listing, after the model was built (minutes for a
ViT-B on some machines). :func:`check_data_roots` reads the data loaders' dataset configs up front.
"""
import os.path as osp
from typing import Iterator, Optional, Sequence, Tuple

from mmengine.config import Config

TRAIN_LOADERS = ('train_dataloader', 'val_dataloader')  # what tools/train.py runs
TEST_LOADERS = ('test_dataloader', )  # what tools/test.py runs


class DataRootNotFoundError(FileNotFoundError):
    """A data set path of a config does not exist; the message names it and the key that moves it."""


def _datasets(dataset: dict, key: str) -> Iterator[Tuple[str, dict]]:
    """(config key, dataset config) of ``dataset`` and of the datasets it wraps (Repeat, Concat, ...)."""
    yield key, dataset
    if isinstance(dataset.get('dataset'), dict):
        yield from _datasets(dataset['dataset'], f'{key}.dataset')
    for i, inner in enumerate(dataset.get('datasets') or []):
        if isinstance(inner, dict):
            yield from _datasets(inner, f'{key}.datasets.{i}')


def _missing(dataset: dict, key: str) -> Optional[Tuple[str, str, str]]:
    """(missing path, key that names it, its value) for the first path of ``dataset`` that does not exist."""
    root = dataset.get('data_root')
    if not isinstance(root, str) or '://' in root:
        return None  # no local root (or an object store, which the backend checks)
    if not osp.isdir(root):
        return root, f'{key}.data_root', root
    prefixes = dataset.get('data_prefix')
    if isinstance(prefixes, str):
        prefixes = {'': prefixes}
    ann_file = dataset.get('ann_file')
    paths = [('ann_file', ann_file)] if ann_file else []
    paths += [(f'data_prefix{"." + name if name else ""}', p) for name, p in (prefixes or {}).items()]
    split = dataset.get('split')
    if not paths and isinstance(split, str) and split:  # mmpretrain's ImageNet: ROOT/SPLIT/ or ROOT/meta/SPLIT.txt
        if not (osp.isdir(osp.join(root, split)) or osp.isfile(osp.join(root, 'meta', f'{split}.txt'))):
            return osp.join(root, split), f'{key}.split', split
    for name, path in paths:
        if isinstance(path, str) and path and '://' not in path:
            full = path if osp.isabs(path) else osp.join(root, path)
            if not osp.exists(full):
                return full, f'{key}.{name}', path
    return None


def check_data_roots(cfg: Config, loaders: Sequence[str] = TRAIN_LOADERS) -> None:
    """Raise :class:`DataRootNotFoundError` if a data set of the given data loaders is not on disk.

    Checks ``data_root`` of every dataset (and of the datasets it wraps), then its ``data_prefix``,
    ``ann_file`` or ImageNet ``split`` under that root. Loaders that are None (e.g. ``--no-validate``) are
    skipped; so are roots on object stores.

    Args:
        cfg (Config): The config as the Runner will get it (``--cfg-options`` applied).
        loaders (Sequence[str]): Top-level data-loader keys to check.
    """
    for loader_key in loaders:
        loader = cfg.get(loader_key)
        if not isinstance(loader, dict) or not isinstance(loader.get('dataset'), dict):
            continue
        for key, dataset in _datasets(loader['dataset'], f'{loader_key}.dataset'):
            found = _missing(dataset, key)
            if found is None:
                continue
            path, bad_key, value = found
            root_key = f'{key}.data_root'
            where = f'{bad_key}={value!r}' if bad_key == root_key else \
                f'{bad_key}={value!r} under {root_key}={dataset["data_root"]!r}'
            raise DataRootNotFoundError(
                f'Data set not found: {path} does not exist ({where}). Put the data there, or point the config '
                f'at it with --cfg-options {root_key}=PATH.')
