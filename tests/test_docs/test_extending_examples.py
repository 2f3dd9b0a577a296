"""docs/extending.md: every Python block runs as the page shows it (tiny sizes), so the page cannot rot."""
import os.path as osp
import re
from typing import Dict, List

import pytest
import torch
from mmpretrain.registry import MODELS

from tests.conftest import REPO

DOC = 'docs/extending.md'
# section title -> the class its example registers
EXAMPLES = {'A new order': 'DiagonalOrder', 'A new target': 'PatchColourTarget', 'A new decoder': 'LinearDecoder'}
PYTHON = re.compile(r'^```python\n(.*?)^```', re.M | re.S)


def python_blocks() -> Dict[str, List[str]]:
    """The Python blocks of the page by ``## `` section ('' = before the first section)."""
    with open(osp.join(REPO, DOC), encoding='utf-8') as f:
        parts = re.split(r'^## (.+)$', f.read(), flags=re.M)
    sections = dict(zip([''] + parts[1::2], parts[0::2]))
    return {title: PYTHON.findall(text) for title, text in sections.items()}


def run(blocks: List[str], namespace: dict) -> None:
    for block in blocks:
        exec(compile(block, DOC, 'exec'), namespace)


@pytest.fixture
def namespace():
    """The shared set-up block run; the example classes are taken out of the registry afterwards."""
    namespace = {}
    run(python_blocks()[''], namespace)
    yield namespace
    for name in EXAMPLES.values():
        MODELS.module_dict.pop(name, None)


@pytest.mark.parametrize('title', sorted(EXAMPLES))
def test_each_example_builds_a_model_that_trains(title, namespace):
    blocks = python_blocks()[title]
    assert len(blocks) == 1
    assert len(blocks[0].strip().splitlines()) <= 30  # a short example
    run(blocks, namespace)
    model = namespace['model']
    assert type(model).__name__ == 'SAIM' and torch.isfinite(namespace['loss'])
    part = {'A new order': model.order_generator, 'A new target': model.head, 'A new decoder': model.neck}[title]
    assert type(part).__name__ == EXAMPLES[title]
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.backbone.parameters())


def test_the_page_has_one_set_up_block_and_one_example_per_section():
    blocks = python_blocks()
    assert len(blocks['']) == 1
    assert {title: len(found) for title, found in blocks.items() if found and title} == dict.fromkeys(EXAMPLES, 1)
