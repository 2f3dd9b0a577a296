"""Gathering across ranks: tensors whose row counts differ, and verdicts every rank must share."""
from typing import List

import torch
from mmengine.dist import all_gather, all_reduce, get_rank, get_world_size
from torch import Tensor


def all_gather_rows(tensor: Tensor) -> Tensor:
    """The rows of ``tensor`` of every rank, concatenated in rank order, on every rank.

    ``torch.distributed.all_gather`` needs the same shape on every rank; here each rank may hold a different
    number of rows (the shards of a data set that does not split evenly). Without a process group (one
    process) ``tensor`` comes back as it is.

    Args:
        tensor (Tensor): (n_rank, ...) rows of this rank; the trailing dimensions are the same on every rank.

    Returns:
        Tensor: (sum of n_rank, ...).
    """
    if get_world_size() == 1:
        return tensor
    counts = [int(n) for n in all_gather(torch.tensor([tensor.size(0)], device=tensor.device))]
    padded = tensor.new_zeros((max(counts), *tensor.shape[1:]))
    padded[:tensor.size(0)] = tensor
    return torch.cat([rows[:n] for rows, n in zip(all_gather(padded), counts)])


def ranks_flagging(flag: bool) -> List[int]:
    """The ranks whose ``flag`` is true, known to every rank (one all-reduce; without a process group, this
    process alone). Every rank must call it, so that all of them take the same decision."""
    flags = torch.zeros(get_world_size())
    flags[get_rank()] = float(bool(flag))
    all_reduce(flags, op='sum')
    return [r for r, f in enumerate(flags.tolist()) if f]
