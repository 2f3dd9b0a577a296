"""The benchmark tools run end to end on tiny settings and report what they promise, with the command,
machine, versions and date in their --out files."""
import json
import os.path as osp
import subprocess
import sys

from tests.conftest import REPO

PROVENANCE = ('command', 'machine', 'versions', 'date_utc')


def run_tool(*args) -> str:
    proc = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=600,
                          env={'PYTHONPATH': REPO, 'PATH': '/usr/bin:/bin'})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def read_results(path: str, tool: str) -> dict:
    report = json.load(open(path))
    assert list(report)[:4] == list(PROVENANCE)
    assert report['command'].startswith(f'python tools/analysis/{tool} ') and path in report['command']
    return report


def test_benchmark_pretrain_compares_both_paths(tmp_path):
    out = str(tmp_path / 'bench.json')
    stdout = run_tool('tools/analysis/benchmark_pretrain.py', '--arch', 'deit-tiny', '--img-size', '32',
                      '48', '--batch-size', '2', '--warmup', '1', '--repeats', '2', '--threads', '1',
                      '--out', out)
    assert 'same loss' in stdout and 'speed x' in stdout
    report = read_results(out, 'benchmark_pretrain.py')
    assert {c['img_size'] for c in report['loss_checks']} == {32, 48}
    assert all(c['loss_rel_diff'] <= 1e-5 for c in report['loss_checks'])
    rows = report['results']
    assert sorted((r['img_size'], r['path']) for r in rows) == [
        (32, 'authors'), (32, 'production'), (48, 'authors'), (48, 'production')]
    for r in rows:
        assert r['images_per_s'] > 0 and r['peak_mem_mib'] >= 0 and r['tflops_per_s'] > 0
        assert len(r['step_s_all']) == 2
    assert all(r['speedup'] == 1.0 for r in rows if r['path'] == 'authors')
    for size in (32, 48):  # both paths are measured against the same counted work
        assert len({r['flops_per_image'] for r in rows if r['img_size'] == size}) == 1
    assert rows[0]['flops_per_image'] > 0


def test_benchmark_dataloader_reports_per_worker(tmp_path):
    out = str(tmp_path / 'loader.json')
    stdout = run_tool('tools/analysis/benchmark_dataloader.py', 'configs/saim/vitb_800e.py', '--synthetic',
                      '24', '--workers', '0', '1', '--batch-size', '4', '--num-batches', '2', '--out', out)
    assert 'images/s per worker' in stdout
    rows = read_results(out, 'benchmark_dataloader.py')['results']
    assert [r['workers'] for r in rows] == [0, 1]
    assert all(r['images'] == 8 and r['images_per_s'] > 0 for r in rows)


def test_plan_memory_prints_the_plan(tmp_path):
    out = str(tmp_path / 'plan.json')
    stdout = run_tool('tools/analysis/plan_memory.py', osp.join(REPO, 'configs/saim/demo_cpu.py'), '--gpu-mem',
                      '4', '8', '--out', out)
    assert 'batch x accum' in stdout and 'parameters:' in stdout
    plan = read_results(out, 'plan_memory.py')
    for variant in plan['variants'].values():
        assert variant['flops_per_image'] > 0
        for fit in variant['fits'].values():
            assert fit['batch'] * fit['accumulative_counts'] * plan['gpus'] == plan['total_batch']
