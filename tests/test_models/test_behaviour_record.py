"""The models compute what the recorded code computed (tests/data/behaviour_record.pth, written by
tests/data/behaviour_record.py).

For each recorded tiny model: the same seed gives bit-identical initial weights (so seeded runs, e.g. the
CPU demo, draw the same numbers), the recorded weights load with ``strict=True``, and predictions, losses,
features, dense-task maps and attention maps equal the record in float64.
"""
import os.path as osp

import pytest
import torch

from tests.conftest import REPO
from tests.data.behaviour_record import cases, run_case

RECORD = osp.join(REPO, 'tests', 'data', 'behaviour_record.pth')


@pytest.fixture(scope='module')
def record():
    return torch.load(RECORD, weights_only=True)


@pytest.mark.parametrize('name', sorted(cases()))
def test_same_initial_weights_and_outputs_as_recorded(name, record):
    cfg, seed, shape, fn = cases()[name]
    expected = record[name]
    initial, _, outputs = run_case(cfg, seed, shape, fn, state_dict=expected['initial'])
    assert list(initial) == list(expected['initial'])  # same keys, same order
    for key, value in expected['initial'].items():
        assert torch.equal(initial[key], value), f'{name}: initial {key} differs from the record'
    assert sorted(outputs) == sorted(expected['outputs'])
    for key, value in expected['outputs'].items():
        err = ((outputs[key] - value).norm() / value.norm()).item()
        assert err <= 1e-12, f'{name}: {key} differs from the record (relative {err:.1e})'


def test_record_covers_every_kind_of_model():
    names = set(cases())
    assert {'saim_stochastic_dec4', 'saim_shared_dec2_no_gauss', 'saim_raster_dec0', 'saim_attention_maps',
            'vit_plain_featmaps', 'vit_dense_windows_padded', 'vit_dense_global_cls'} <= names
