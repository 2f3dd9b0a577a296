"""Fill the measured tables of a Markdown page from the JSON files that the benchmark tools write.

A table is marked in the page by two comments; everything between them is replaced by a caption (the
command, machine, software versions and date recorded in the JSON) and a table of the JSON's rows::

    <!-- results: docs/results/dataloader.json columns=workers,images_per_s,per_worker -->
    ...generated...
    <!-- end results -->

The JSON is what ``--out FILE`` of tools/analysis/benchmark_*.py writes (``saim_mm.analysis.write_results``):
``command``, ``machine``, ``versions``, ``date_utc`` and a list of row dicts (``results``, or the key given
as ``key=NAME``). Paths are relative to the repository root.

    python tools/misc/render_benchmarks.py docs/benchmarks.md           # rewrite the tables in place
    python tools/misc/render_benchmarks.py docs/benchmarks.md --check   # exit 1 if a table is out of date
"""
import argparse
import json
import os.path as osp
import re
import sys
from typing import Dict, List, Optional, Sequence

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
BLOCK = re.compile(r'(<!-- results: (?P<args>[^>]*?) -->\n)(?P<body>.*?)(<!-- end results -->)', re.S)
PROVENANCE = ('command', 'machine', 'versions', 'date_utc')


def fmt(value) -> str:
    """A cell: floats with 4 significant digits (no exponent), everything else as it prints."""
    if isinstance(value, float):
        return f'{value:.0f}' if abs(value) >= 1000 else f'{value:.4g}'
    return '' if value is None else str(value)


def caption(record: Dict, source: str) -> str:
    """One line saying how, on what and when the figures of ``record`` were measured."""
    missing = [k for k in PROVENANCE if k not in record]
    if missing:
        raise ValueError(f'{source}: no {", ".join(missing)} (expected the provenance that '
                         'saim_mm.analysis.write_results writes)')
    m, v = record['machine'], record['versions']
    where = f'{m.get("cpu")}, {m.get("cpu_count")} cores, {m.get("torch_threads")} torch threads'
    if m.get('gpu'):
        where += f', GPU {m["gpu"]}'
    soft = ', '.join((f'torch built for CUDA {val}' if k == 'cuda' else f'{k} {val}')
                     for k, val in v.items() if val is not None)
    return (f'Command: `{record["command"]}`. Machine: {where}. Software: {soft}. '
            f'Date: {record["date_utc"][:10]}. Source: `{source}`.')


def render(record: Dict, source: str, columns: Optional[Sequence[str]] = None, key: str = 'results') -> str:
    """The caption and the Markdown table of ``record[key]`` (a list of dicts) in ``columns``."""
    rows = record.get(key)
    if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
        raise ValueError(f'{source}: "{key}" is not a non-empty list of row objects')
    columns = list(columns or rows[0])
    unknown = [c for c in columns if all(c not in r for r in rows)]
    if unknown:
        raise ValueError(f'{source}: no column {unknown} in "{key}" (columns: {sorted(rows[0])})')
    lines = [caption(record, source), '', '| ' + ' | '.join(columns) + ' |',
             '| ' + ' | '.join('---' for _ in columns) + ' |']
    lines += ['| ' + ' | '.join(fmt(r.get(c)) for c in columns) + ' |' for r in rows]
    return '\n'.join(lines) + '\n'


def parse_args_line(args: str) -> Dict[str, object]:
    """``PATH columns=a,b key=NAME`` -> dict(path=..., columns=[...] or None, key=...)."""
    path, *opts = args.split()
    out: Dict[str, object] = dict(path=path, columns=None, key='results')
    for opt in opts:
        name, _, value = opt.partition('=')
        if name == 'columns':
            out['columns'] = value.split(',')
        elif name == 'key':
            out['key'] = value
        else:
            raise ValueError(f'unknown option {opt!r} in "<!-- results: {args} -->" (columns=..., key=...)')
    return out


def fill(text: str, root: str = ROOT) -> str:
    """``text`` with every marked table rendered from its JSON file."""
    def one(m: re.Match) -> str:
        opts = parse_args_line(m.group('args'))
        path = osp.join(root, opts['path'])
        if not osp.isfile(path):
            raise FileNotFoundError(f'{opts["path"]} (named in "<!-- results: {m.group("args")} -->") '
                                    'does not exist')
        with open(path) as f:
            record = json.load(f)
        table = render(record, opts['path'], opts['columns'], opts['key'])
        return m.group(1) + '\n' + table + '\n' + m.group(4)
    return BLOCK.sub(one, text)


def sources(text: str) -> List[str]:
    """The JSON paths the page's markers name."""
    return [parse_args_line(m.group('args'))['path'] for m in BLOCK.finditer(text)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('pages', nargs='+', help='Markdown pages with <!-- results: ... --> markers')
    parser.add_argument('--check', action='store_true', help='change nothing; exit 1 if a page is out of date')
    args = parser.parse_args()
    stale = []
    for page in args.pages:
        with open(page, encoding='utf-8') as f:
            text = f.read()
        new = fill(text)
        if new != text:
            stale.append(page)
            if not args.check:
                with open(page, 'w', encoding='utf-8') as f:
                    f.write(new)
    if args.check and stale:
        print('out of date (run tools/misc/render_benchmarks.py on them): ' + ', '.join(stale), file=sys.stderr)
        return 1
    for page in stale:
        print(f'updated {page}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
