"""Every config's model has the state-dict keys and shapes of the record (tests/data/config_state_dicts.json,
written by tests/data/behaviour_record.py), so every checkpoint of a recorded config loads with ``strict=True``."""
import json
import os.path as osp

import pytest

from tests.conftest import REPO
from tests.data.behaviour_record import build_config_model, config_paths

RECORD = osp.join(REPO, 'tests', 'data', 'config_state_dicts.json')
with open(RECORD) as f:
    RECORDED = json.load(f)


def test_every_recorded_config_still_exists():
    """Configs added after the record have nothing to keep; every recorded one must still be there."""
    assert sorted(set(RECORDED) - set(config_paths())) == []


@pytest.mark.parametrize('rel', sorted(RECORDED))
def test_state_dict_keys_and_shapes_equal_the_record(rel):
    """The model is built at full size on the meta device (no memory, no time)."""
    got = {k: list(v.shape) for k, v in build_config_model(rel).state_dict().items()}
    expected = RECORDED[rel]
    missing = sorted(set(expected) - set(got))
    unexpected = sorted(set(got) - set(expected))
    assert not missing and not unexpected, f'{rel}: missing {missing[:5]}, unexpected {unexpected[:5]}'
    shapes = [k for k in expected if got[k] != expected[k]]
    assert not shapes, f'{rel}: shapes differ for {shapes[:5]}'
