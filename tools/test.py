"""Evaluate a checkpoint with mmengine's Runner (same command line as mmpretrain's tools/test.py).

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out results.pkl]
    tools/dist_test.sh CONFIG CHECKPOINT GPUS [ARGS]
"""
import argparse
import os.path as osp

import torch
from mmengine.config import Config

from saim_mm.checkpoint import checkpoint_safe_globals
from saim_mm.utils import build_runner, close_process_group, parse_runner_args
from saim_mm.utils.data_roots import TEST_LOADERS


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test (evaluate) a saim_mm / OpenMMLab model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the dir to save the evaluation log')
    parser.add_argument('--out', help='dump the predictions to this pickle file')
    return parse_runner_args(parser, 'test_dataloader.batch_size=64')


def main() -> None:
    args = parse_args()
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    cfg.launcher = args.launcher
    cfg.load_from = args.checkpoint
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    if args.out is not None:
        if not args.out.endswith(('.pkl', '.pickle')):
            raise ValueError(f'--out must be a .pkl or .pickle file, got {args.out!r}.')
        cfg.test_evaluator = cfg.test_evaluator if isinstance(cfg.test_evaluator, list) \
            else [cfg.test_evaluator]
        cfg.test_evaluator.append(dict(type='DumpResults', out_file_path=args.out))
    # mmengine reads resume / load_from files with torch.load's weights-only default; its own checkpoints also
    # hold HistoryBuffer and numpy objects, allowed for this run only (import saim_mm registers nothing)
    with torch.serialization.safe_globals(checkpoint_safe_globals()):
        build_runner(cfg, TEST_LOADERS).test()
    close_process_group()


if __name__ == '__main__':
    main()
