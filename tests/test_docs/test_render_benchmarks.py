"""tools/misc/render_benchmarks.py: tables with their provenance from the benchmark tools' JSON, and
docs/benchmarks.md in step with the JSON files under docs/results/."""
import glob
import json
import os.path as osp
import subprocess
import sys

import pytest

from tests.conftest import REPO

sys.path.insert(0, osp.join(REPO, 'tools', 'misc'))
from render_benchmarks import fill, render, sources  # noqa: E402

RECORD = dict(command='python tools/analysis/benchmark_dataloader.py --workers 1 2',
              machine=dict(cpu='Some CPU', cpu_count=2, torch_threads=2, gpu='NVIDIA H200', platform='Linux'),
              versions=dict(python='3.11.7', torch='2.14.1', mmengine='0.10.7', cuda=None),
              date_utc='2026-12-03T11:38:06+00:00',
              results=[dict(workers=1, images_per_s=176.8774), dict(workers=2, images_per_s=12345.6)])


def test_render_gives_caption_and_rows():
    out = render(RECORD, 'docs/results/x.json')
    caption, _, header, rule, *rows = out.splitlines()
    assert caption == ('Command: `python tools/analysis/benchmark_dataloader.py --workers 1 2`. Machine: Some CPU, '
                       '2 cores, 2 torch threads, GPU NVIDIA H200. Software: python 3.11.7, torch 2.14.1, '
                       'mmengine 0.10.7. Date: 2026-12-03. Source: `docs/results/x.json`.')
    assert header == '| workers | images_per_s |' and rule == '| --- | --- |'
    assert rows == ['| 1 | 176.9 |', '| 2 | 12346 |']
    assert render(RECORD, 'x', columns=['images_per_s']).splitlines()[2] == '| images_per_s |'


def test_bad_json_is_refused_with_its_name():
    bad = {k: v for k, v in RECORD.items() if k != 'date_utc'}
    with pytest.raises(ValueError, match='x.json: no date_utc'):
        render(bad, 'x.json')
    with pytest.raises(ValueError, match=r"x.json: no column \['speed'\]"):
        render(RECORD, 'x.json', columns=['speed'])
    with pytest.raises(FileNotFoundError, match='docs/results/none.json'):
        fill('<!-- results: docs/results/none.json -->\n<!-- end results -->')


def test_fill_replaces_only_the_marked_block(tmp_path):
    (tmp_path / 'r.json').write_text(json.dumps(RECORD))
    page = 'intro\n<!-- results: r.json columns=workers -->\nold table\n<!-- end results -->\noutro\n'
    new = fill(page, root=str(tmp_path))
    assert new.startswith('intro\n<!-- results: r.json columns=workers -->\n\nCommand: ')
    assert '| 2 |\n\n<!-- end results -->\noutro\n' in new and 'old table' not in new
    assert fill(new, root=str(tmp_path)) == new


def test_benchmarks_page_is_in_step_with_its_json():
    """Every JSON under docs/results/ is rendered in docs/benchmarks.md, and the page is up to date."""
    with open(osp.join(REPO, 'docs', 'benchmarks.md'), encoding='utf-8') as f:
        page = f.read()
    on_disk = {osp.relpath(p, REPO) for p in glob.glob(osp.join(REPO, 'docs', 'results', '*.json'))}
    assert on_disk <= set(sources(page)), f'not rendered in docs/benchmarks.md: {on_disk - set(sources(page))}'
    proc = subprocess.run([sys.executable, osp.join(REPO, 'tools/misc/render_benchmarks.py'),
                           osp.join(REPO, 'docs/benchmarks.md'), '--check'], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
