"""Reading the documentation as data: fenced code blocks, shell commands, links and repository paths.

Used by the tests in this folder, which keep README.md and docs/*.md from pointing at things that no
longer exist and make sure their commands are run by a test (or are named as needing a GPU cluster).
"""
import glob
import itertools
import os
import os.path as osp
import re
from typing import Iterator, List, Sequence, Tuple

from tests.conftest import REPO

FENCE = re.compile(r'^```([\w+-]*)[^\n]*\n(.*?)^```', re.M | re.S)
LINK = re.compile(r'!?\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)|<img[^>]*\ssrc="([^"]+)"')
# A repository path: starts with a top-level folder of the repository, may hold {a,b} and * patterns.
REPO_PATH = re.compile(
    r'(?<![\w./-])((?:configs|tools|tests|saim_mm|docs|requirements|\.ci)/[\w./{},*+-]*[\w/}*])')
SHELL_LANGS = ('bash', 'sh', 'shell', 'console')


def doc_files() -> List[str]:
    """README.md and every docs/*.md, as paths relative to the repository root."""
    return ['README.md'] + sorted(osp.relpath(p, REPO) for p in glob.glob(osp.join(REPO, 'docs', '*.md')))


def read(rel: str) -> str:
    with open(osp.join(REPO, rel), encoding='utf-8') as f:
        return f.read()


def code_blocks(text: str, langs: Sequence[str] = SHELL_LANGS) -> List[str]:
    """The bodies of the fenced code blocks whose language is one of ``langs``."""
    return [m.group(2) for m in FENCE.finditer(text) if m.group(1) in langs]


def section(text: str, title: str) -> str:
    """The text of the Markdown section ``## title`` (up to the next heading of the same or a higher level;
    ``#`` lines inside fenced code blocks are not headings)."""
    lines = text.splitlines(keepends=True)
    fenced, start, level, out = False, None, 0, []
    for line in lines:
        if line.startswith('```'):
            fenced = not fenced
        heading = None if fenced else re.match(r'^(#+) (.+?)\s*$', line)
        if start is None:
            if heading and heading.group(2) == title:
                start, level = True, len(heading.group(1))
            continue
        if heading and len(heading.group(1)) <= level:
            break
        out.append(line)
    if start is None:
        raise AssertionError(f'no section "{title}"')
    return ''.join(out)


def shell_commands(block: str) -> List[str]:
    """One string per command of a shell block: continuation lines joined, comments and blank lines dropped."""
    joined = re.sub(r'\\\n\s*', ' ', block)
    out = []
    for line in joined.splitlines():
        line = re.sub(r'\s+#.*$', '', line).strip()  # trailing comment
        if line and not line.startswith('#'):
            out.append(re.sub(r'\s+', ' ', line))
    return out


def prose(text: str) -> str:
    """``text`` without its fenced code blocks."""
    return FENCE.sub('', text)


def links(text: str) -> Iterator[str]:
    """Targets of Markdown links and images, and of HTML ``<img src>``, outside code blocks."""
    for m in LINK.finditer(prose(text)):
        yield m.group(1) or m.group(2)


def expand_braces(pattern: str) -> List[str]:
    """``a/{b,c}/d`` -> ``['a/b/d', 'a/c/d']`` (any number of brace groups, no nesting)."""
    parts = re.split(r'\{([^{}]*)\}', pattern)
    choices = [[p] if i % 2 == 0 else p.split(',') for i, p in enumerate(parts)]
    return [''.join(c) for c in itertools.product(*choices)]


def repo_paths(text: str) -> Iterator[str]:
    """Every repository path named in ``text`` (prose and code), trailing punctuation removed."""
    for m in REPO_PATH.finditer(text):
        path = m.group(1).rstrip('.,')
        if '..' in path or '$' in path:
            continue
        yield path


def path_exists(pattern: str) -> bool:
    """True when every brace alternative of ``pattern`` names an existing file or folder (globs match one)."""
    for p in expand_braces(pattern):
        full = osp.join(REPO, p)
        if any(c in p for c in '*?['):
            if not glob.glob(full):
                return False
        elif not osp.exists(full):
            return False
    return True


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    h = re.sub(r'[`*_]', '', heading.strip().lower())
    h = re.sub(r'[^\w\- ]', '', h)
    return h.replace(' ', '-')


def anchors(text: str) -> List[str]:
    return [github_anchor(m.group(1)) for m in re.finditer(r'^#+ (.+)$', prose(text), re.M)]


def make_sandbox(root: str) -> str:
    """A working folder whose configs/ and tools/ link to the repository's, so that commands written for
    the repository root run there and write data/ and work_dirs/ under ``root`` only."""
    for name in ('configs', 'tools'):
        os.symlink(osp.join(REPO, name), osp.join(root, name))
    return root


def split_command(cmd: str) -> List[Tuple[str, ...]]:
    """``a b && c d`` -> ``[('a', 'b'), ('c', 'd')]`` (only ``&&`` chains; no quoting beyond shlex)."""
    import shlex
    return [tuple(shlex.split(part)) for part in cmd.split(' && ')]
