"""docs/extending.md: every Python block runs as the page shows it (tiny sizes), so the page cannot rot."""
import pytest
import torch
from mmpretrain.registry import MODELS

from tests.test_docs.markdown import code_blocks, read, section

DOC = 'docs/extending.md'
# section title -> the class its example registers
EXAMPLES = {'A new order': 'DiagonalOrder', 'A new target': 'PatchColourTarget', 'A new decoder': 'LinearDecoder'}


def run(blocks, namespace: dict) -> None:
    for block in blocks:
        exec(compile(block, DOC, 'exec'), namespace)


@pytest.fixture
def namespace():
    """The shared set-up block run; the example classes are taken out of the registry afterwards."""
    text = read(DOC)
    first = text.index('```python')
    namespace = {}
    run(code_blocks(text[first:text.index('\n## ')], ('python', )), namespace)
    yield namespace
    for name in EXAMPLES.values():
        MODELS.module_dict.pop(name, None)


@pytest.mark.parametrize('title', sorted(EXAMPLES))
def test_each_example_builds_a_model_that_trains(title, namespace):
    blocks = code_blocks(section(read(DOC), title), ('python', ))
    assert len(blocks) == 1
    assert len(blocks[0].strip().splitlines()) <= 30  # a short example
    run(blocks, namespace)
    model = namespace['model']
    assert type(model).__name__ == 'SAIM' and torch.isfinite(namespace['loss'])
    part = {'A new order': model.order_generator, 'A new target': model.head, 'A new decoder': model.neck}[title]
    assert type(part).__name__ == EXAMPLES[title]
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.backbone.parameters())


def test_the_page_has_no_other_python_blocks():
    text = read(DOC)
    assert len(code_blocks(text, ('python', ))) == 1 + len(EXAMPLES)
    assert sorted(EXAMPLES) == sorted(t for t in EXAMPLES if f'## {t}\n' in text)
