"""Memory planner for SAIM pre-training configs: how large a per-GPU batch fits, with and without
activation checkpointing, and the gradient accumulation that keeps the total batch.

    python tools/analysis/plan_memory.py configs/saim/saim_vit-large-p16_8xb256-amp-coslr-800e_in1k.py \\
        --gpu-mem 40 80 [--gpus 8] [--total-batch 2048] [--out plan.json]

For the config's model at full size it prints the parameters, the FLOPs of one training image (forward +
backward; with checkpointing the recomputed forward too), the activation memory per image with and without
activation checkpointing, and for each GPU memory the largest per-GPU batch (a power of two, so that GPUs x
batch x accumulation is the total batch), its step peak, and the ``optim_wrapper.accumulative_counts``
for it.

The figures are measured, not taken from a formula (saim_mm.analysis.memory_plan, on saim_mm.analysis.cost).
The model is built under torch's ``FakeTensorMode``
(tensors with shapes and dtypes but no storage: ViT-H at batch 256 costs no memory and seconds) and
training steps (forward, backward, then the AdamW step with its states already there, ``foreach`` as on a
GPU) run under torch's ``MemTracker``, which counts the bytes of every tensor alive at every moment
(parameters, gradients, optimiser states, activations, temporaries), and ``FlopCounterMode``, which counts
the FLOPs of every matrix product and attention. Mixed precision is the config's (bf16 or fp16 autocast
for ``AmpOptimWrapper``), run with the CPU's autocast: the same 2-byte matrix products, and the CPU's
flash attention, which keeps what a GPU's keeps (output and log-sum-exp). The step peak is measured at the
largest per-GPU batch and half of it; where that does not fit, the batch is estimated from the growth per
image and measured again, halving until it fits.

A GPU is budgeted as ``--usable`` (0.9) of its memory minus ``--reserve-gib`` (1 GiB); FSDP and DeepSpeed
configs are planned as :mod:`saim_mm.analysis.memory_plan` says. ``--out`` writes the plan with the command,
machine, versions and UTC date.
"""
import argparse
import sys
import time

from saim_mm.analysis import write_results
from saim_mm.analysis.memory_plan import GIB, plan


def print_plan(r: dict) -> None:
    p = r['params']
    print(f"{r['config']}: precision {r['precision']}, images {r['image'][1]}x{r['image'][2]}, "
          f"{r['gpus']} GPUs, total batch {r['total_batch']}{', FSDP' if r['fsdp'] else ''}")
    print(f"parameters: {p['total'] / 1e6:.1f} M (encoder {p['encoder'] / 1e6:.1f} M, decoder "
          f"{p['decoder'] / 1e6:.1f} M, trainable {p['trainable'] / 1e6:.1f} M)")
    print(f"GPU budget: {r['usable']:.0%} of its memory minus {r['reserve_gib']:g} GiB")
    gpu_cols = list(next(iter(r['variants'].values()))['fits'])
    head = ['checkpointing', 'GFLOPs/image', 'activations/image (MiB)'] + [
        f'{g} GB: batch x accum (peak GiB)' for g in gpu_cols]
    print(' | '.join(head))
    print(' | '.join('---' for _ in head))
    for name, v in r['variants'].items():
        cells = ['yes' if name == 'with_cp' else 'no', f"{v['flops_per_image'] / 1e9:.1f}",
                 f"{v['activations_per_image'] / 2**20:.1f}"]
        for g in gpu_cols:
            fit = v['fits'][g]
            cells.append(f"{fit['batch']} x {fit['accumulative_counts']} ({fit['peak'] / GIB:.1f})"
                         if fit['batch'] else 'does not fit')
        print(' | '.join(cells))
        print(f"  measured step peaks (GiB) by batch: "
              f"{', '.join(f'{b}: {p / GIB:.2f}' for b, p in v['measured'].items())}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='SAIM pre-training config')
    parser.add_argument('--gpu-mem', type=float, nargs='+', default=[40, 80], help='GPU memory in GB (GiB)')
    parser.add_argument('--gpus', type=int, default=8)
    parser.add_argument('--total-batch', type=int, default=2048)
    parser.add_argument('--usable', type=float, default=0.9, help='fraction of GPU memory tensors may use')
    parser.add_argument('--reserve-gib', type=float, default=1.0, help='GiB kept for the CUDA context')
    parser.add_argument('--out', help='write the plan to this JSON file')
    args = parser.parse_args()
    t0 = time.perf_counter()
    result = plan(args.config, args.gpu_mem, args.gpus, args.total_batch, args.usable, args.reserve_gib)
    result['seconds'] = time.perf_counter() - t0
    print_plan(result)
    if args.out:
        write_results(args.out, result)
        print(f'wrote {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
