"""Few-label protocols: the probes trained (the k-NN memory bank built) on a few labelled images per class.

A :class:`LabelBudget` is either K images per class (``--labels-per-class``) or a fraction F of every
class (``--label-fraction``, the 1 % / 10 % protocols of the field: ``max(1, floor(F * n_c + 1/2))`` of
the ``n_c`` images of class c). A draw is stratified and depends on (seed, draw) and the labels only, so
that every row of a seed is probed on the same images: per class, one permutation of its images is drawn
from a generator seeded by (seed, draw), and a budget takes its first images (the subsets of one draw are
nested: K = 1 is part of K = 5). Evaluation stays on the whole held-out set.

A few-label column is a :class:`~.protocols.Protocol` whose key is ``<protocol key>@<budget key>``; its
per-seed figure is the list of the draws' top-1, summarised over seeds x draws (:mod:`.report`).
"""
import math
from typing import Dict, List, NamedTuple, Sequence

import numpy as np
import torch
from torch import Tensor

from .protocols import PROTOCOLS, FeatureSet, Protocol

KINDS = ('per_class', 'fraction')


class LabelBudget(NamedTuple):
    """``kind`` ``'per_class'`` (``value`` = K images per class) or ``'fraction'`` (``value`` = F in (0, 1])."""
    kind: str
    value: float

    @property
    def key(self) -> str:
        """``'1pc'`` (K = 1 per class) or ``'10pct'`` (F = 0.1)."""
        return f'{int(self.value)}pc' if self.kind == 'per_class' else f'{100 * self.value:g}pct'

    @property
    def title(self) -> str:
        return f'{int(self.value)}/class' if self.kind == 'per_class' else f'{100 * self.value:g} %'

    def count(self, class_size: int) -> int:
        """Images drawn from a class of ``class_size`` images."""
        if self.kind == 'per_class':
            return int(self.value)
        return max(1, math.floor(self.value * class_size + 0.5))


def label_budgets(per_class: Sequence[int] = (), fractions: Sequence[float] = ()) -> List[LabelBudget]:
    """The budgets of ``--labels-per-class`` and ``--label-fraction``, in that order.

    Raises:
        ValueError: a K below 1, an F outside (0, 1], or a repeated value.
    """
    for flag, values in (('--labels-per-class', per_class), ('--label-fraction', fractions)):
        if len(set(values)) != len(values):
            raise ValueError(f'{flag} repeats a value: {list(values)}.')
    for k in per_class:
        if int(k) != k or k < 1:
            raise ValueError(f'--labels-per-class must be integers >= 1, got {k}.')
    for f in fractions:
        if not 0 < f <= 1:
            raise ValueError(f'--label-fraction must be in (0, 1], got {f}.')
    return ([LabelBudget('per_class', int(k)) for k in per_class] +
            [LabelBudget('fraction', float(f)) for f in fractions])


def check_budgets(budgets: Sequence[LabelBudget], labels: Tensor, classes: Sequence[str]) -> None:
    """Every budget fits every class of ``labels`` (N, ) (indices into ``classes``).

    Raises:
        ValueError: K larger than the smallest class (named, with its size).
    """
    sizes = torch.bincount(labels, minlength=len(classes)).tolist()
    smallest = min(range(len(sizes)), key=sizes.__getitem__)
    for budget in budgets:
        if budget.kind == 'per_class' and budget.value > sizes[smallest]:
            raise ValueError(f'--labels-per-class {int(budget.value)} is larger than the smallest class of the '
                             f'training images: {classes[smallest]!r} has {sizes[smallest]}; use at most '
                             f'{sizes[smallest]}.')


def draw_generator(seed: int, draw: int) -> torch.Generator:
    """A generator seeded by (seed, draw) through numpy's ``SeedSequence`` (distinct pairs, distinct streams)."""
    if seed < 0 or draw < 0:
        raise ValueError(f'seed and draw must be >= 0, got seed={seed}, draw={draw}.')
    state = int(np.random.SeedSequence([seed, draw]).generate_state(1, dtype=np.uint64)[0])
    return torch.Generator().manual_seed(state)


def draw_subset(labels: Tensor, budget: LabelBudget, seed: int, draw: int) -> Tensor:
    """Indices (sorted) of the images of draw ``draw`` under ``seed``: :meth:`LabelBudget.count` of each class.

    Args:
        labels (Tensor): (N, ) class indices of the training images.
        budget (LabelBudget): How many of each class.
        seed (int): The study's seed.
        draw (int): The draw (0, 1, ...).

    Raises:
        ValueError: a class has fewer images than K.
    """
    gen = draw_generator(seed, draw)
    chosen = []
    for c in torch.unique(labels).tolist():  # ascending: the same stream for the same labels
        members = torch.nonzero(labels == c).flatten()
        n = budget.count(len(members))
        if n > len(members):
            raise ValueError(f'--labels-per-class {n} is larger than class {c}, which has {len(members)} images.')
        chosen.append(members[torch.randperm(len(members), generator=gen)[:n]])
    return torch.cat(chosen).sort().values


def few_label_protocols(budgets: Sequence[LabelBudget],
                        protocols: Sequence[Protocol] = PROTOCOLS) -> List[Protocol]:
    """A column per budget and protocol: key ``<protocol>@<budget>``, title ``<protocol>, <budget>``."""
    return [Protocol(f'{p.key}@{b.key}', f'{p.title}, {b.title}', p.probe, p.feature)
            for b in budgets for p in protocols]


def run_few_label(train: FeatureSet, budgets: Sequence[LabelBudget], draws: int, seed: int, run) -> Dict:
    """Top-1 of every protocol on every budget and draw.

    Args:
        train (FeatureSet): The whole training set.
        budgets (Sequence[LabelBudget]): The budgets.
        draws (int): Draws per budget.
        seed (int): The study's seed.
        run: ``run(subset: FeatureSet) -> {protocol key: top-1}``, the protocols trained on ``subset``.

    Returns:
        dict: ``{'<protocol>@<budget>': [top-1 of draw 0, 1, ...]}`` and ``'subset_sizes'``:
        ``{budget key: [images of draw 0, 1, ...]}``.
    """
    out: Dict = dict(subset_sizes={})
    for budget in budgets:
        sizes = []
        for draw in range(draws):
            subset = train.select(draw_subset(train.labels, budget, seed, draw))
            sizes.append(len(subset.labels))
            for key, value in run(subset).items():
                out.setdefault(f'{key}@{budget.key}', []).append(value)
        out['subset_sizes'][budget.key] = sizes
    return out
