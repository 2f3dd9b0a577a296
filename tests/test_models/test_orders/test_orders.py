"""Generation orders: every registered order gives permutations; each follows its definition."""
import pytest
import torch
from mmpretrain.registry import MODELS

import saim_mm  # noqa: F401
from saim_mm.models.orders import BaseGenerationOrder, named_orders
from saim_mm.models.utils import check_order


def build(name: str, grid=(4, 6), **kwargs):
    return MODELS.build(dict(type=named_orders()[name], grid=grid, **kwargs))


def test_the_names_are_the_order_classes_own():
    names = named_orders()
    assert sorted(names) == ['centre_out', 'checkerboard', 'fixed_random', 'random_segments', 'raster', 'semantic',
                             'spiral', 'stochastic']
    assert all(cls.name == name and issubclass(cls, BaseGenerationOrder) for name, cls in names.items())
    assert MODELS.get('StochasticOrder') is names['stochastic']


def test_two_orders_with_one_name_are_an_error():

    @MODELS.register_module()
    class AnotherRasterOrder(BaseGenerationOrder):
        name = 'raster'

    try:
        with pytest.raises(ValueError, match="RasterOrder and AnotherRasterOrder are both named 'raster'"):
            named_orders()
    finally:
        MODELS.module_dict.pop('AnotherRasterOrder')
    assert named_orders()['raster'].__name__ == 'RasterOrder'


# an order computed from the images (semantic) needs a model: test_semantic_order.py
@pytest.mark.parametrize('name', sorted(name for name, cls in named_orders().items() if not cls.needs_images))
@pytest.mark.parametrize('grid', [(4, 6), (6, 4), (2, 2)])
def test_every_order_draws_a_batch_of_permutations(name, grid):
    torch.manual_seed(0)
    order = build(name, grid)
    z = order(3)
    check_order(z, 3, grid[0] * grid[1])
    if order.fixed:
        assert torch.equal(z, order(3)) and torch.equal(z[0], z[1])


def test_stochastic_and_segment_orders_differ_per_sample_and_call():
    torch.manual_seed(0)
    for name in ('stochastic', 'random_segments'):
        order = build(name, (8, 8))
        a, b = order(2), order(2)
        assert not torch.equal(a[0], a[1]) and not torch.equal(a, b)


def test_raster_spiral_centre_out_checkerboard_by_hand():
    assert build('raster', (2, 3))(1)[0].tolist() == [0, 1, 2, 3, 4, 5]
    # 3 x 4 grid:  0  1  2  3 / 4  5  6  7 / 8  9 10 11
    assert build('spiral', (3, 4))(1)[0].tolist() == [0, 1, 2, 3, 7, 11, 10, 9, 8, 4, 5, 6]
    assert build('spiral', (1, 3))(1)[0].tolist() == [0, 1, 2]
    assert build('spiral', (3, 1))(1)[0].tolist() == [0, 1, 2]
    # 3 x 3: the centre, then the four edge middles, then the corners (ties in raster order)
    assert build('centre_out', (3, 3))(1)[0].tolist() == [4, 1, 3, 5, 7, 0, 2, 6, 8]
    assert build('checkerboard', (2, 3))(1)[0].tolist() == [0, 2, 4, 1, 3, 5]


def test_fixed_random_order_is_drawn_once_and_kept_in_the_checkpoint():
    torch.manual_seed(0)
    a = build('fixed_random', (4, 4))
    torch.manual_seed(1)
    b = build('fixed_random', (4, 4))
    assert not torch.equal(a(1), b(1))
    assert list(a.state_dict()) == ['order']
    b.load_state_dict(a.state_dict())
    assert torch.equal(a(2), b(2))
    assert not any(build(name).state_dict() for name in named_orders() if name != 'fixed_random')


def test_random_segments_are_tiles_in_random_order():
    torch.manual_seed(0)
    order = build('random_segments', (4, 6), segment=(2, 3))
    assert order.segment_size == 6
    for row in order(4):
        for tile in row.view(-1, 6):
            ys, xs = tile // 6, tile % 6
            assert len(set((ys // 2).tolist())) == 1 and len(set((xs // 3).tolist())) == 1  # one 2 x 3 tile
    with pytest.raises(ValueError, match=r'segment \(3, 3\) must tile the 4x6 patch grid'):
        build('random_segments', (4, 6), segment=(3, 3))
