"""tools/analysis/benchmark_pretrain.py --with-cp times the production path with activation checkpointing;
--cpu-memory step counts what the timed steps add to the state after the warm-up."""
import json

from tests.test_tools.test_benchmarks import run_tool


def test_benchmark_pretrain_with_checkpointing_and_step_memory(tmp_path):
    out = str(tmp_path / 'bench.json')
    stdout = run_tool('tools/analysis/benchmark_pretrain.py', '--arch', 'deit-tiny', '--img-size', '32',
                      '--batch-size', '2', '--warmup', '1', '--repeats', '1', '--threads', '1', '--paths',
                      'production', '--with-cp', '--cpu-memory', 'step', '--out', out)
    assert 'production +with_cp' in stdout
    (row, ) = json.load(open(out))['results']
    assert row['with_cp'] is True and row['cpu_memory'] == 'step' and row['path'] == 'production'
    assert row['images_per_s'] > 0 and row['peak_mem_mib'] >= 0
