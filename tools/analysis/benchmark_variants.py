"""What each SAIM variant costs: training-step time, peak memory and FLOPs against the paper's SAIM and MAE.

Rows (ViT-B/16 unless ``--arch``): the paper's SAIM (``configs/saim/vitb_800e.py``), every config given with
``--configs`` (e.g. ``configs/saim/variants/*.py``), the content stream alone (the causal encoder, no
decoder: the floor of any SAIM, since the encoder must see every patch) and mmpretrain's own ``MAE``
(``mmpretrain::_base_/models/mae_vit-base-p16.py`` unchanged: mask ratio 0.75, 512-wide 8-block decoder).

Each row is a full training step (forward, backward, AdamW step) on the same random images, timed in a
fresh process so that its peak memory is its own, and its FLOPs per image are counted by torch's
``FlopCounterMode`` over forward and backward (all by ``saim_mm.analysis.cost``). ``--out`` writes the
figures with the command, machine, versions and UTC date.

Configs of the autoregressive family (``configs/saim/family/``) are rows like any other: a prefix-causal
encoder counts as a causal one (attention in full squares), an ``MLPPredictionNeck`` is its residual MLP
blocks, and what runs without gradients is in the step and in its time: the forward of a
``FeatureTargetHead``'s teacher (and an EMA teacher's update), and the extra encoder or teacher pass of an
order computed from the images (``SemanticOrder``). Those no-grad FLOPs are also given on their own. A
``PretrainedTeacher`` reads random weights here (its checkpoint is not read: the cost does not depend on
the values), and an encoder-bound teacher's ``feature_dims`` follows ``--arch``.

    python tools/analysis/benchmark_variants.py --configs configs/saim/variants/partial_1_2.py \\
        configs/saim/variants/partial_1_6.py configs/saim/variants/narrow_512x8.py \\
        configs/saim/variants/narrow_512x8_partial_1_6.py configs/saim/variants/narrow_512x4_partial_1_6.py \\
        --batch-size 4 --threads 2 --out work_dirs/cost.json
"""
import argparse
import contextlib
import os.path as osp
import tempfile
from typing import List

import torch

from saim_mm.analysis import write_results
from saim_mm.analysis.cost import run_isolated, time_training_step, training_flops_by_part

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PAPER = 'configs/saim/vitb_800e.py'
MAE = 'mmpretrain::_base_/models/mae_vit-base-p16.py'
FLOOR = 'content stream alone'


def encoder_width(cfg) -> int:
    """Width of the encoder of a model config (its ``backbone.arch``: a name of the ViT's ``arch_zoo`` or a
    dict)."""
    from mmpretrain.registry import MODELS
    arch = cfg.backbone.arch
    if isinstance(arch, str):
        return MODELS.get(cfg.backbone.type).arch_zoo[arch.lower()]['embed_dims']
    return arch['embed_dims']


def fit_teacher(cfg) -> None:
    """An encoder-bound teacher's (EMA, patch embeddings) ``head.feature_dims`` set to the encoder width."""
    head = cfg.get('head') or {}
    teacher = head.get('teacher') or {}
    if head.get('feature_dims') is not None and teacher.get('type') in ('EMATeacher', 'PatchEmbedTeacher'):
        head.feature_dims = encoder_width(cfg)


@contextlib.contextmanager
def random_teacher_checkpoint(cfg):
    """Within: a ``PretrainedTeacher`` of the model config ``cfg`` reads the randomly initialised weights of its
    own ViT from a temporary file instead of its ``checkpoint``: the cost does not depend on the values, and
    the file a ViT-B config names need not be on the machine that measures."""
    teacher = (cfg.get('head') or {}).get('teacher') or {}
    if teacher.get('type') != 'PretrainedTeacher':
        yield
        return
    from saim_mm.models.teachers import PretrainedTeacher
    model = teacher['model']
    vit = PretrainedTeacher.build_timm(model) if model['type'] == 'timm' else PretrainedTeacher.build_mmpretrain(model)
    with tempfile.TemporaryDirectory() as tmp:
        teacher['checkpoint'] = osp.join(tmp, 'random_teacher.pth')
        torch.save(vit.state_dict(), teacher['checkpoint'])
        del vit
        yield


def build(row: str, arch: str, img_size: int, init: bool = True):
    """The model of a row in training mode; ``init``: run its initialisation."""
    import saim_mm  # noqa: F401
    from mmengine.config import Config
    from mmengine.logging import MMLogger
    from mmpretrain.registry import MODELS
    if not MMLogger.check_instance_created('benchmark_variants'):  # no per-parameter init log
        MMLogger.get_instance('benchmark_variants', log_level='WARNING')
    from mmengine.hub import get_config
    cfg = (get_config(MAE) if row == MAE else Config.fromfile(osp.join(REPO, PAPER if row == FLOOR else row))).model
    cfg.backbone.arch = arch
    cfg.backbone.img_size = img_size
    fit_teacher(cfg)
    with random_teacher_checkpoint(cfg):
        model = MODELS.build(cfg)
        if init:
            model.init_weights()
    return model.train()


def loss_of(model, row: str, x: torch.Tensor) -> torch.Tensor:
    if row == FLOOR:  # the causal encoder over every patch, without the query stream
        order = model.sample_order(x.shape[0], x.device)
        return model.backbone(x, order=order)[0][-1].pow(2).mean()
    return model.loss(x, [])['loss'] if row == MAE else model.loss(x)['loss']


def run_case(case: dict) -> dict:
    """Time and count one row (the count after the timed steps, on one image); meant to run in a fresh process.

    Returns:
        dict: the case, :func:`time_training_step`'s figures, ``gflops_per_image`` (the training step) and
        ``gflops_no_grad`` (of it, the order and target computed without gradients: ``order`` and ``target``
        of :func:`training_flops_by_part`).
    """
    torch.set_num_threads(case['threads'])
    row, arch, size = case['row'], case['arch'], case['img_size']
    torch.manual_seed(0)
    model = build(row, arch, size)
    x = torch.randn(case['batch'], 3, size, size)
    timed = time_training_step(model, lambda: loss_of(model, row, x), 'cpu', case['warmup'], case['repeats'])
    flops = training_flops_by_part(model, lambda m, images: loss_of(m, row, images), x[:1])
    return dict(case, **timed, gflops_per_image=flops['total'] / 1e9,
                gflops_no_grad=dict(order=flops['order'] / 1e9, target=flops['target'] / 1e9))


def print_table(rows: List[dict]) -> None:
    paper = next(r for r in rows if r['row'] == PAPER)
    floor = next(r for r in rows if r['row'] == FLOOR)
    mae = next(r for r in rows if r['row'] == MAE)
    head = ('row', 'GFLOPs/img', 'of which no-grad (order + target)', 'step s', 'peak MiB', 'time / SAIM',
            'mem / SAIM', 'time / floor', 'GFLOPs / floor', 'time / MAE')
    print(' | '.join(head))
    print(' | '.join('---' for _ in head))
    for r in rows:
        name = osp.basename(r['row']) if r['row'] not in (FLOOR, MAE) else r['row']
        no_grad = r['gflops_no_grad']
        print(' | '.join(str(v) for v in (
            name, f"{r['gflops_per_image']:.1f}", f"{no_grad['order']:.1f} + {no_grad['target']:.1f}",
            f"{r['step_s']:.2f}", f"{r['peak_mem_mib']:.0f}", f"{r['step_s'] / paper['step_s']:.2f}",
            f"{r['peak_mem_mib'] / paper['peak_mem_mib']:.2f}", f"{r['step_s'] / floor['step_s']:.2f}",
            f"{r['gflops_per_image'] / floor['gflops_per_image']:.2f}", f"{r['step_s'] / mae['step_s']:.2f}")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--configs', nargs='*', default=[], help='variant pre-training configs (rows)')
    parser.add_argument('--arch', default='b', help="mmpretrain ViT arch of every row ('b' = ViT-B)")
    parser.add_argument('--img-size', type=int, default=224)
    parser.add_argument('--batch-size', type=int, default=4)
    parser.add_argument('--threads', type=int, default=torch.get_num_threads())
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--out', default=None, help='write all results to this JSON file')
    args = parser.parse_args()
    rows = [PAPER, *args.configs, FLOOR, MAE]
    results = []
    for row in rows:
        case = dict(row=row, arch=args.arch, img_size=args.img_size, batch=args.batch_size, threads=args.threads,
                    warmup=args.warmup, repeats=args.repeats)
        results.append(run_isolated(run_case, case))
        r = results[-1]
        print(f"{row}: {r['step_s']:.2f} s/step, peak {r['peak_mem_mib']:.0f} MiB, "
              f"{r['gflops_per_image']:.1f} GFLOPs/image", flush=True)
    print()
    print_table(results)
    if args.out:
        write_results(args.out, dict(threads=args.threads, results=results))
        print(f'\nwrote {args.out}')


if __name__ == '__main__':
    main()
