"""Every relative link and every repository path that README.md and docs/*.md name exists.

A link is checked with its anchor (``page.md#section`` needs that heading); a path such as
``configs/saim/{vitb_300e,vitb_800e}.py`` or ``configs/saim/ablations/*.py`` must exist for every brace
alternative and match at least one file for a glob. Paths under data/ and work_dirs/ are what commands
create, not repository content, and are not checked.
"""
import os.path as osp
from urllib.parse import unquote

import pytest

from tests.conftest import REPO
from tests.test_docs.markdown import anchors, doc_files, links, path_exists, read, repo_paths

DOCS = doc_files()


def test_the_docs_exist():
    """The pages that the README's documentation table promises."""
    for page in ('get_started', 'pretrain', 'transfer', 'scaling', 'variants', 'checkpoints', 'reliability',
                 'benchmarks', 'method', 'recipes', 'contributing'):
        assert f'docs/{page}.md' in DOCS


def broken_links(rel: str) -> list:
    text = read(rel)
    bad = []
    for target in links(text):
        if '://' in target or target.startswith('mailto:'):
            continue
        path, _, anchor = unquote(target).partition('#')
        full = osp.normpath(osp.join(REPO, osp.dirname(rel), path)) if path else osp.join(REPO, rel)
        if not osp.exists(full):
            bad.append(f'{target} (no such file)')
        elif anchor and full.endswith('.md') and anchor not in anchors(open(full, encoding='utf-8').read()):
            bad.append(f'{target} (no heading with anchor #{anchor})')
    return bad


@pytest.mark.parametrize('rel', DOCS)
def test_relative_links_resolve(rel):
    bad = broken_links(rel)
    assert not bad, f'{rel}: broken links: ' + '; '.join(bad)


@pytest.mark.parametrize('rel', DOCS)
def test_named_repository_paths_exist(rel):
    missing = sorted({p for p in repo_paths(read(rel)) if not path_exists(p)})
    assert not missing, f'{rel} names paths that do not exist in the repository: ' + ', '.join(missing)


def test_the_checks_catch_what_they_look_for(tmp_path):
    """The helpers see a missing file, a missing anchor, brace and glob paths (so the tests above can fail)."""
    assert path_exists('configs/saim/{vitb_300e,vitb_800e}.py')
    assert not path_exists('configs/saim/{vitb_300e,vitb_900e}.py')
    assert path_exists('configs/saim/ablations/*.py') and not path_exists('configs/saim/ablations/*.yaml')
    assert list(repo_paths('see `tools/train.py`, and tests/test_docs/.')) == ['tools/train.py', 'tests/test_docs/']
    assert list(links('[a](docs/x.md#y) <img src="docs/assets/z.png"/>\n```\n[b](c.md)\n```\n')) == [
        'docs/x.md#y', 'docs/assets/z.png']
    assert 'the-cpu-demo' in anchors('## The CPU demo\n')
