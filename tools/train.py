"""Train a model from a config with mmengine's Runner (same command line as mmpretrain's tools/train.py).

    python tools/train.py configs/saim/vitb_800e.py [--work-dir DIR] [--resume [CKPT]] [--amp] ...
    tools/dist_train.sh configs/saim/vitb_800e.py 8 [ARGS]
"""
import argparse
import os.path as osp

import torch
from mmengine.config import Config

from saim_mm.checkpoint import checkpoint_safe_globals
from saim_mm.utils import build_runner, close_process_group, parse_runner_args
from saim_mm.utils.data_roots import TRAIN_LOADERS


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a saim_mm / OpenMMLab model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from the given checkpoint; without a path, from the latest checkpoint in the work dir')
    parser.add_argument('--amp', action='store_true', help='enable automatic mixed precision training')
    parser.add_argument('--no-validate', action='store_true', help='do not evaluate during training')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the lr by the actual total batch size over auto_scale_lr.base_batch_size')
    parser.add_argument('--no-pin-memory', action='store_true', help='disable pin_memory in dataloaders')
    parser.add_argument('--no-persistent-workers', action='store_true',
                        help='disable persistent_workers in dataloaders')
    return parse_runner_args(parser, 'train_dataloader.batch_size=64')


def merge_args(cfg: Config, args: argparse.Namespace) -> Config:
    """Apply the command line to the config."""
    if args.no_validate:
        cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    if args.amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume
    if args.auto_scale_lr:
        cfg.auto_scale_lr.enable = True
    for field in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg.get(field)
        if loader is None:
            continue
        if args.no_pin_memory:
            loader['pin_memory'] = False
        if args.no_persistent_workers:
            loader['persistent_workers'] = False
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    return cfg


def main() -> None:
    args = parse_args()
    cfg = merge_args(Config.fromfile(args.config), args)
    # mmengine reads resume / load_from files with torch.load's weights-only default; its own checkpoints also
    # hold HistoryBuffer and numpy objects, allowed for this run only (import saim_mm registers nothing)
    with torch.serialization.safe_globals(checkpoint_safe_globals()):
        build_runner(cfg, TRAIN_LOADERS).train()
    close_process_group()


if __name__ == '__main__':
    main()
