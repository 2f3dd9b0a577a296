"""saim_mm.analysis.provenance: a results file says how, where and when its figures were made."""
import datetime
import json
import os

import pytest

from saim_mm.analysis import write_results


def test_results_carry_command_machine_versions_and_date(tmp_path):
    path = write_results(str(tmp_path / 'sub' / 'r.json'), dict(results=[dict(step_s=1.5)]))
    record = json.load(open(path))
    assert list(record)[:4] == ['command', 'machine', 'versions', 'date_utc']
    assert record['command'].startswith('python ') and record['results'] == [dict(step_s=1.5)]
    assert record['machine']['cpu_count'] == os.cpu_count() and record['machine']['cpu']
    assert record['machine']['gpu'] is None
    assert {'python', 'torch', 'mmengine', 'mmpretrain'} <= set(record['versions'])
    assert all(record['versions'][k] for k in ('python', 'torch', 'mmengine', 'mmpretrain'))
    date = datetime.datetime.fromisoformat(record['date_utc'])
    assert date.utcoffset() == datetime.timedelta(0)


def test_figures_may_not_hide_the_provenance(tmp_path):
    with pytest.raises(ValueError, match="provenance keys \\['machine'\\]"):
        write_results(str(tmp_path / 'r.json'), dict(machine='mine'))
