"""The benchmark tools run end to end on tiny settings and report what they promise."""
import json
import os.path as osp
import subprocess
import sys

from tests.conftest import REPO


def run_tool(*args) -> str:
    proc = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=600,
                          env={'PYTHONPATH': REPO, 'PATH': '/usr/bin:/bin'})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_benchmark_pretrain_compares_both_paths(tmp_path):
    out = str(tmp_path / 'bench.json')
    stdout = run_tool('tools/analysis/benchmark_pretrain.py', '--arch', 'deit-tiny', '--img-size', '32',
                      '48', '--batch-size', '2', '--warmup', '1', '--repeats', '2', '--threads', '1',
                      '--out', out)
    assert 'same loss' in stdout and 'speed x' in stdout
    report = json.load(open(out))
    assert {c['img_size'] for c in report['loss_checks']} == {32, 48}
    assert all(c['loss_rel_diff'] <= 1e-5 for c in report['loss_checks'])
    rows = report['results']
    assert sorted((r['img_size'], r['path']) for r in rows) == [
        (32, 'authors'), (32, 'production'), (48, 'authors'), (48, 'production')]
    for r in rows:
        assert r['images_per_s'] > 0 and r['peak_mem_mib'] >= 0 and r['tflops_per_s'] > 0
        assert len(r['step_s_all']) == 2
    assert all(r['speedup'] == 1.0 for r in rows if r['path'] == 'authors')


def test_step_flops_counts_the_architecture():
    sys.path.insert(0, osp.join(REPO, 'tools/analysis'))
    from benchmark_pretrain import step_flops
    # ViT-B/16 at 224: the encoder forward is the well-known 17.6 GMACs = 35.2 GFLOPs; SAIM adds a
    # decoder of about the same size and a head, and a step is 3 x the forward
    total = step_flops('b', 224)
    assert 3 * 2 * 34e9 < total < 3 * 2 * 37e9
    assert step_flops('b', 448) > 4 * step_flops('b', 224)  # attention grows faster than tokens


def test_benchmark_dataloader_reports_per_worker(tmp_path):
    out = str(tmp_path / 'loader.json')
    stdout = run_tool('tools/analysis/benchmark_dataloader.py', 'configs/saim/vitb_800e.py', '--synthetic',
                      '24', '--workers', '0', '1', '--batch-size', '4', '--num-batches', '2', '--out', out)
    assert 'images/s per worker' in stdout
    rows = json.load(open(out))['results']
    assert [r['workers'] for r in rows] == [0, 1]
    assert all(r['images'] == 8 and r['images_per_s'] > 0 for r in rows)
