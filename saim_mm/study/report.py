"""The study's report: mean and spread over seeds, the markdown table, ``study.json`` and the two figures."""
import json
import statistics
from typing import Dict, List, Optional, Sequence

import torch

from ..analysis import provenance
from ..analysis.cost import cpu_seconds
from .protocols import PROTOCOLS, Protocol


def mean_std(values: Sequence[float]) -> Dict[str, Optional[float]]:
    """Mean and sample standard deviation (n - 1; None for one value)."""
    return dict(mean=statistics.mean(values), std=statistics.stdev(values) if len(values) > 1 else None)


def cell(summary: Optional[dict], digits: int = 1) -> str:
    """``mean ± std`` for the table (just the mean with one seed, ``-`` when absent)."""
    if summary is None:
        return '-'
    if summary['std'] is None:
        return f"{summary['mean']:.{digits}f}"
    return f"{summary['mean']:.{digits}f} ± {summary['std']:.{digits}f}"


def pooled(records: List[dict], key: str) -> List[float]:
    """The figures of ``key`` over the per-seed ``records``: one a seed, or a list a seed (the draws of a
    few-label column), flattened in seed order."""
    values: List[float] = []
    for r in records:
        values.extend(r[key] if isinstance(r[key], list) else [r[key]])
    return values


def summarize(entry: dict, protocols: Sequence[Protocol] = PROTOCOLS) -> dict:
    """``entry['summary']``: :func:`mean_std` over its seeds (x draws, for a few-label column) of every
    protocol (and of the final loss of a pre-trained row)."""
    keys = [p.key for p in protocols] + (['final_loss'] if entry['pretrained'] else [])
    entry['summary'] = {key: mean_std(pooled(entry['seeds'], key)) for key in keys}
    return entry


def table(rows: List[dict], protocols: Sequence[Protocol] = PROTOCOLS) -> str:
    """The markdown table: a row per encoder, the final pre-training loss and a column per protocol."""
    head = ['row', 'final pre-train loss', *(p.title for p in protocols)]
    lines = [' | '.join(head), ' | '.join('---' for _ in head)]
    for r in rows:
        lines.append(' | '.join([r['name'], cell(r['summary'].get('final_loss'), 3),
                                 *(cell(r['summary'][p.key]) for p in protocols)]))
    return '\n'.join(lines)


def write_study(path: str, args: dict, data: dict, rows: List[dict], seconds: float,
                protocols: Sequence[Protocol] = PROTOCOLS) -> None:
    """``study.json``: the command, machine, versions and date, the arguments, the data, every per-seed
    figure and summary, the wall and CPU time."""
    record = provenance()
    record.update(args=args, data=data, protocols={p.key: p.title for p in protocols}, rows=rows, seconds=seconds,
                  cpu_seconds=cpu_seconds())
    with open(path, 'w') as f:
        json.dump(record, f, indent=2)


def _axes(figsize: tuple):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt, *plt.subplots(figsize=figsize, dpi=120)


def _save(plt, fig, ax, out: str, title: str, **legend) -> None:
    ax.set_title(title)
    ax.legend(**legend)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def plot_curves(rows: List[dict], out: str, title: str) -> None:
    """Mean pre-training loss per iteration of every pre-trained row, with a ±1 std band over the seeds."""
    plt, fig, ax = _axes((6, 4))
    for row in rows:
        curves = [r['curve'] for r in row['seeds'] if r.get('curve')]
        if not curves:
            continue
        n = min(len(c) for c in curves)
        iters = [it for it, _ in curves[0][:n]]
        losses = torch.tensor([[v for _, v in c[:n]] for c in curves])
        mean = losses.mean(0)
        line, = ax.plot(iters, mean, label=row['name'])
        if len(curves) > 1:
            std = losses.std(0)
            ax.fill_between(iters, mean - std, mean + std, color=line.get_color(), alpha=0.25)
    ax.set_xlabel('iteration')
    ax.set_ylabel('pre-training loss (each row its own target)')
    _save(plt, fig, ax, out, title)


def plot_protocols(rows: List[dict], out: str, title: str, protocols: Sequence[Protocol] = PROTOCOLS) -> None:
    """Mean top-1 per protocol (groups) and row (bars) with std error bars; 8 inches wide up to 6 groups,
    1.2 a group beyond."""
    plt, fig, ax = _axes((max(8.0, 1.2 * len(protocols)), 4))
    width = 0.8 / len(rows)
    for i, row in enumerate(rows):
        means = [row['summary'][p.key]['mean'] for p in protocols]
        stds = [row['summary'][p.key]['std'] or 0.0 for p in protocols]
        ax.bar([j + (i - (len(rows) - 1) / 2) * width for j in range(len(protocols))], means, width, yerr=stds,
               capsize=2, label=row['name'])
    many = len(protocols) > 6
    ax.set_xticks(range(len(protocols)), [p.title for p in protocols], fontsize=7 if many else 8,
                  rotation=30 if many else 0, ha='right' if many else 'center')
    ax.set_ylabel('top-1 (%)')
    ax.set_ylim(0, 100)
    _save(plt, fig, ax, out, title, fontsize=7)
