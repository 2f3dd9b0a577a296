"""What a training step costs: FLOPs per image, peak memory and time, each case in a fresh process.

One method each, used by ``tools/analysis/benchmark_pretrain.py``, ``benchmark_variants.py``,
``plan_memory.py`` (through :mod:`.memory_plan`) and the study:

- FLOPs: torch's ``FlopCounterMode`` over one forward + backward pass of a model built with fake tensors
  (:func:`training_flops_per_image`): matrix products, convolutions and attention, multiply-add = 2 FLOPs,
  attention scores and values counted in full whether causal or masked, the optimiser step not counted;
  of a built model, with its parts that run without gradients (an order computed from the images, the
  target: a teacher's forward) counted on their own too (:func:`training_flops_by_part`);
- peak memory of real steps (:class:`PeakMemory`): on a GPU ``torch.cuda.max_memory_allocated``; on the
  CPU the peak resident set size minus the resident size when the count was restarted (Linux
  ``/proc/self/clear_refs``); and of fake steps by tensor category (:func:`fake_step_memory`, torch's
  ``MemTracker``) for planning sizes no machine here can hold;
- step time (:func:`time_training_step`): forward, backward and an AdamW step, median of the timed steps;
- CPU time of a process and its children (:func:`cpu_seconds`);
- isolation (:func:`run_isolated`): a case in a fresh (spawned) process, so that its peak memory is its own.
"""
import contextlib
import ctypes
import gc
import multiprocessing as mp
import queue as queue_module
import resource
import statistics
import time
from typing import Callable, Dict, List, Optional, Sequence

import torch
from torch import Tensor, nn

from .torch_internals import cpu_attention_flop_formulas, fake_tensor_mode, peak_memory_tracker

MIB = 2**20
MEMORY_FROM = ('run', 'step')
CATEGORIES = ('Parameter', 'Buffer', 'Gradient', 'Optstate', 'Activation', 'Temp', 'Other')
LossFn = Callable[[nn.Module, Tensor], Tensor]


def autocast(device: str, dtype: Optional[torch.dtype]):
    """``torch.autocast`` in ``dtype`` on ``device`` (a no-op context for None: fp32)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.split(':')[0], dtype=dtype)


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs of running ``fn()`` (``FlopCounterMode`` with formulas for the CPU's attention kernels too)."""
    from torch.utils.flop_counter import FlopCounterMode
    counter = FlopCounterMode(display=False, custom_mapping=cpu_attention_flop_formulas())
    with counter:
        fn()
    return counter.get_total_flops()


def training_flops_per_image(build: Callable[[], nn.Module], loss: LossFn, image_shape: Sequence[int],
                             batch: int = 1, dtype: Optional[torch.dtype] = None) -> float:
    """FLOPs of one training image: forward and backward of ``loss(build(), images)`` (activation
    checkpointing's recomputation included), counted on fake tensors (no memory, any size).

    Args:
        build: Builds the model (in training mode); called under ``FakeTensorMode``.
        loss: ``loss(model, images)``, a scalar tensor; ``images`` is (batch, *image_shape).
        image_shape (Sequence[int]): (3, H, W).
        batch (int): Images per counted step (the count is divided by it). Defaults to 1.
        dtype (torch.dtype, optional): Autocast dtype (on the CPU) of the forward pass; None: fp32.
    """
    with fake_tensor_mode():
        model = build()
        x = torch.randn(batch, *image_shape)

        def step() -> None:
            with autocast('cpu', dtype):
                value = loss(model, x)
            value.backward()

        return count_flops(step) / batch


def training_flops_by_part(model: nn.Module, loss: LossFn, images: Tensor) -> Dict[str, float]:
    """FLOPs per image of one training step of a built ``model``, and of its parts without gradients.

    The model runs on real tensors: fixed orders check their permutation and teachers copy or read
    weights when built, which fake tensors cannot do (use :func:`training_flops_per_image` to plan sizes
    no machine holds). The step counts every operation once, the parts without gradients among them; each
    part is counted again on its own, under ``torch.no_grad``:

    - ``order``: ``model.sample_order(B, device, images=images)`` when the order is computed from the
      images (``order_generator.needs_images``, e.g. the semantic order's encoder pass), else 0;
    - ``target``: ``model.head.construct_target(images)`` (a teacher's forward, or a pixel target's
      smoothing) when the head has one, else 0.

    Args:
        model (nn.Module): The model in training mode (a ``SAIM``, or any model: its parts count 0).
        loss: ``loss(model, images)``, a scalar tensor.
        images (Tensor): (B, 3, H, W).

    Returns:
        dict: ``total`` (forward + backward of ``loss``), ``order``, ``target`` and ``trained``
        (``total - order - target``), each per image.
    """
    batch = images.shape[0]
    total = count_flops(lambda: loss(model, images).backward())
    order, head = getattr(model, 'order_generator', None), getattr(model, 'head', None)
    with torch.no_grad():
        by_order = (count_flops(lambda: model.sample_order(batch, images.device, images=images))
                    if getattr(order, 'needs_images', False) else 0)
        by_target = count_flops(lambda: head.construct_target(images)) if hasattr(head, 'construct_target') else 0
    out = dict(total=total, order=by_order, target=by_target, trained=total - by_order - by_target)
    return {k: v / batch for k, v in out.items()}


def _proc_status_bytes(key: str) -> int:
    with open('/proc/self/status') as f:
        return 1024 * int(next(line.split()[1] for line in f if line.startswith(key + ':')))


class PeakMemory:
    """Peak memory of this process from the last :meth:`reset` on.

    GPU: ``torch.cuda.max_memory_allocated`` (everything allocated, weights included). CPU (Linux): the peak
    resident set size minus the resident size at :meth:`reset`, which first returns freed memory to the
    OS (``malloc_trim``) and restarts the kernel's peak count (``/proc/self/clear_refs``): what the steps
    add to what was alive at the reset.

    Args:
        device (str): ``'cpu'`` or a CUDA device.
    """

    def __init__(self, device: str = 'cpu') -> None:
        self.cuda = device.startswith('cuda')
        self.base = 0

    def reset(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            return
        gc.collect()
        ctypes.CDLL('libc.so.6').malloc_trim(0)
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        self.base = _proc_status_bytes('VmRSS')

    def peak_mib(self) -> float:
        if self.cuda:
            torch.cuda.synchronize()
            return torch.cuda.max_memory_allocated() / MIB
        return (_proc_status_bytes('VmHWM') - self.base) / MIB


def time_training_step(model: nn.Module, loss: Callable[[], Tensor], device: str = 'cpu', warmup: int = 1,
                       repeats: int = 3, memory_from: str = 'run', dtype: Optional[torch.dtype] = None) -> Dict:
    """Time full training steps (forward, backward, AdamW step) of ``model`` and measure their peak memory.

    Args:
        model (nn.Module): The model, on ``device``; its parameters that require a gradient are trained.
        loss: Runs the forward pass; returns the scalar loss.
        device (str): Where the model runs.
        warmup (int): Untimed steps first. Defaults to 1.
        repeats (int): Timed steps. Defaults to 3.
        memory_from (str): ``'run'``: the peak from before the warm-up (the optimiser states it creates count
            in); ``'step'``: from after it (activations, gradients and temporaries of the timed steps).
        dtype (torch.dtype, optional): Autocast dtype of the forward pass; None: fp32.

    Returns:
        dict: ``step_s`` (median), ``step_s_all`` and ``peak_mem_mib`` (see :class:`PeakMemory`).
    """
    if memory_from not in MEMORY_FROM:
        raise ValueError(f'memory_from must be one of {MEMORY_FROM}, got {memory_from!r}.')
    if repeats < 1 or warmup < 0:
        raise ValueError(f'need repeats >= 1 and warmup >= 0, got repeats={repeats}, warmup={warmup}.')
    optim = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4, betas=(0.9, 0.95),
                              weight_decay=0.05)
    sync = torch.cuda.synchronize if device.startswith('cuda') else (lambda: None)

    def step() -> None:
        optim.zero_grad(set_to_none=True)
        with autocast(device, dtype):
            value = loss()
        value.backward()
        optim.step()

    meter = PeakMemory(device)
    if memory_from == 'run':
        meter.reset()
    for _ in range(warmup):
        step()
    sync()
    if memory_from == 'step':
        meter.reset()
    times: List[float] = []
    for _ in range(repeats):
        sync()
        t0 = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t0)
    return dict(step_s=statistics.median(times), step_s_all=times, peak_mem_mib=meter.peak_mib())


def cpu_seconds() -> Dict[str, float]:
    """User + system CPU time so far: of this process (``main``) and of its finished children (``children``)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return dict(main=own.ru_utime + own.ru_stime, children=children.ru_utime + children.ru_stime)


def _merged(snapshot: Dict[torch.device, Dict[str, int]]) -> Dict[str, int]:
    out: Dict[str, int] = {}
    for per_device in snapshot.values():
        for key, value in per_device.items():
            out[key] = out.get(key, 0) + value
    return out


def fake_step_memory(build: Callable[[], nn.Module], loss: LossFn, image_shape: Sequence[int], batch: int,
                     dtype: Optional[torch.dtype] = None) -> Dict:
    """Bytes of one steady-state training step at ``batch``, measured on fake tensors by torch's ``MemTracker``.

    The model is built under ``FakeTensorMode``, its AdamW states (``foreach``, as on a GPU) exist before
    the step. Autocast runs on the CPU in ``dtype``: the same 2-byte matrix products as a GPU, and the
    CPU's flash attention, which keeps what a GPU's keeps (output and log-sum-exp).

    Returns:
        dict: ``batch``; ``kept``, the bytes alive after the forward pass minus before it (what the backward
        pass needs); ``backward`` and ``update``, the bytes by category (:data:`CATEGORIES` and ``Total``)
        at the peak of forward + backward and of the optimiser step.
    """
    with fake_tensor_mode():
        model = build()
        params = [p for p in model.parameters() if p.requires_grad]
        for p in model.parameters():  # MemTracker hooks every parameter; frozen ones (SAIM's position
            p.requires_grad_(True)  # embedding, < 0.1% of the weights) get a gradient here
        optim = torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.95), weight_decay=0.05, foreach=True)
        for p in params:  # create the optimiser states: a steady-state step is measured
            p.grad = torch.zeros_like(p)
        optim.step()
        optim.zero_grad(set_to_none=True)
        x = torch.randn(batch, *image_shape)
        backward = peak_memory_tracker()
        backward.track_external(model, optim, x)
        with backward:
            before = _merged(backward.get_tracker_snapshot('current')).get('Total', 0)
            with autocast('cpu', dtype):
                value = loss(model, x)
            kept = _merged(backward.get_tracker_snapshot('current')).get('Total', 0) - before
            value.backward()
        del value
        update = peak_memory_tracker()
        update.track_external(model, optim)
        with update:
            optim.step()
            optim.zero_grad(set_to_none=True)
    out = dict(batch=batch, kept=kept)
    for phase, tracker in (('backward', backward), ('update', update)):
        peak = _merged(tracker.get_tracker_snapshot('peak'))
        out[phase] = {k: peak.get(k, 0) for k in ('Total', ) + CATEGORIES}
    return out


def _child(target: Callable[[dict], dict], case: dict, queue) -> None:
    try:
        queue.put(target(case))
    except BaseException as e:  # report, don't hang the parent
        queue.put(dict(case, error=f'{type(e).__name__}: {e}'))


def run_isolated(target: Callable[[dict], dict], case: dict) -> dict:
    """``target(case)`` in a fresh (spawned) process, so that its peak memory is its own.

    ``target`` must be importable by the child (a module-level function). Its result must be picklable.

    Raises:
        RuntimeError: ``target`` raised in the child (its type and message), or the child died.
    """
    ctx = mp.get_context('spawn')
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(target, case, queue))
    proc.start()
    result = None
    while result is None:
        try:
            result = queue.get(timeout=1.0)
        except queue_module.Empty:  # keep waiting while the child lives
            if not proc.is_alive() and queue.empty():
                proc.join()
                raise RuntimeError(f'case {case}: the child process died (exit code {proc.exitcode}) '
                                   'without a result.')
    proc.join()
    if 'error' in result:
        raise RuntimeError(f'case {case}: {result["error"]}')
    return result
