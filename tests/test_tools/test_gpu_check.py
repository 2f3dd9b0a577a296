"""tools/analysis/gpu_check.py: status 2 without CUDA, the targets of issue 24 from part results, time limits
per part, and a CPU rehearsal of the measuring parts at tiny sizes."""
import importlib.util
import json
import math
import os
import os.path as osp
import subprocess
import sys
import time

from tests.conftest import REPO

SCRIPT = osp.join(REPO, 'tools/analysis/gpu_check.py')


def load_gpu_check():
    spec = importlib.util.spec_from_file_location('gpu_check', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def no_gpu_env() -> dict:
    return dict(os.environ, CUDA_VISIBLE_DEVICES='', PYTHON=sys.executable)


def test_without_cuda_one_line_and_status_2(tmp_path):
    for cmd in ([sys.executable, SCRIPT, '--out-dir', str(tmp_path)],
                ['bash', osp.join(REPO, 'tools/analysis/gpu_check.sh'), '--wheels', str(tmp_path / 'none')]):
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300, env=no_gpu_env())
        assert proc.returncode == 2, (cmd, proc.stdout, proc.stderr)
        lines = proc.stdout.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith('gpu_check: no CUDA device is visible'), proc.stdout
    assert not os.listdir(tmp_path)  # nothing written, nothing installed


def bench(size: int, speed: float, mem: float, mfu: float) -> dict:
    return dict(results=[dict(path='production', img_size=size, speedup=speed, mem_ratio=mem, mfu=mfu,
                              images_per_s=100.0 * speed, peak_mem_mib=600.0 * mem, tflops_per_s=1.0),
                         dict(path='authors', img_size=size, speedup=1.0, mem_ratio=1.0, images_per_s=100.0,
                              peak_mem_mib=600.0, tflops_per_s=0.5)])


def test_targets_are_judged_from_the_parts_results():
    gc = load_gpu_check()
    plan = dict(total_batch=256, variants=dict(no_cp=dict(measured={'256': 100 * 2**30})))
    runner = dict(iterations=20, finite=20, peak_mem_bytes=110 * 2**30)
    results = dict(bench_224=bench(224, 1.6, 0.5, 0.40), bench_448=bench(448, 2.4, 0.3, 0.5), plan_memory=plan,
                   runner_fp16=dict(runner, finite=19), runner_bf16=dict(runner, peak_mem_bytes=120 * 2**30))
    got = {t['target']: (t['value'], t['verdict']) for t in gc.judge(results)}
    assert got['speed_224'] == (1.6, 'met') and got['speed_448'] == (2.4, 'missed')
    assert got['memory_224'] == (0.5, 'met') and got['memory_448'] == (0.3, 'met')
    assert got['mfu_224'] == (0.40, 'missed')
    assert math.isclose(got['plan_fp16'][0], 0.10) and got['plan_fp16'][1] == 'met'
    assert math.isclose(got['plan_bf16'][0], 0.20) and got['plan_bf16'][1] == 'missed'
    assert got['finite_fp16'] == (0.95, 'missed') and got['finite_bf16'] == (1.0, 'met')
    # a part that did not run leaves its targets unmeasured, not met
    partial = {t['target']: t['verdict'] for t in gc.judge(dict(bench_224=results['bench_224']))}
    assert partial['speed_448'] == partial['plan_fp16'] == partial['finite_bf16'] == 'not measured'
    # where a target is missed, the table says where the time goes
    report = dict(environment=dict(date='d', device_name='GPU', torch='t', cuda='c', python='p',
                                   peak_bf16_tflops=989.4, command='cmd'),
                  parts=[dict(part='sdpa', status='ok', seconds=1.0)],
                  results=dict(sdpa=dict(by_call_kind={}, profile=dict(what='CUDA kernels', total_ms=10.0, top=[
                      dict(name='flash_fwd_kernel', calls=24, ms=4.0, share=0.4)]))),
                  targets=gc.judge(results))
    text = gc.text_report(report)
    assert 'flash_fwd_kernel' in text and 'missed' in text
    assert gc.peak_tflops('NVIDIA H200') == 989.4 and gc.peak_tflops('NVIDIA H100 PCIe') == 756.0
    assert gc.peak_tflops('Some GPU') is None


def test_a_part_past_its_limit_is_killed_with_its_children(tmp_path):
    gc = load_gpu_check()
    marker = tmp_path / 'child_alive'
    code = ('import subprocess, sys, time\n'
            f'subprocess.Popen([sys.executable, "-c", "import time; time.sleep(4); open({str(marker)!r}, \'w\')"])\n'
            'time.sleep(60)\n')
    t0 = time.perf_counter()
    part = gc.run_part('slow', [sys.executable, '-c', code], 1.5, str(tmp_path / 'slow.log'), dict(os.environ))
    assert part['status'] == 'timeout' and part['rc'] is None and time.perf_counter() - t0 < 10
    time.sleep(5)
    assert not marker.exists()  # the grandchild went with the part
    failed = gc.run_part('bad', [sys.executable, '-c', 'raise SystemExit("broken")'], 30,
                         str(tmp_path / 'bad.log'), dict(os.environ))
    assert failed['status'] == 'failed' and failed['rc'] == 1 and 'broken' in failed['log_tail']


def test_cpu_rehearsal_of_the_measuring_parts(tmp_path):
    out, work = tmp_path / 'out', tmp_path / 'work'
    proc = subprocess.run([sys.executable, SCRIPT, '--device', 'cpu', '--tiny', '--parts', 'runner_fp16', 'sdpa',
                           'prefix', 'checkpointing', '--out-dir', str(out), '--work-dir', str(work)],
                          cwd=REPO, capture_output=True, text=True, timeout=900, env=no_gpu_env())
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    report = json.load(open(out / 'gpu_check.json'))
    status = {p['part']: p['status'] for p in report['parts']}
    assert status == dict({p: 'not selected' for p in status}, runner_fp16='ok', sdpa='ok', prefix='ok',
                          checkpointing='ok')
    assert (out / 'gpu_check.txt').read_text().count('\n') > 10 and (out / 'gpu_check.log').exists()
    r = report['results']
    runner = r['runner_fp16']
    assert runner['done'] == runner['iterations'] == 2 and runner['all_finite']
    assert all(math.isfinite(v) for v in runner['losses']) and runner['images_per_s'] > 0
    # every attention call of the paper model (12 encoder + 12 decoder blocks) is recorded with its kernel
    sdpa = r['sdpa']
    assert len(sdpa['calls']) == 24 and all(c['is_causal'] for c in sdpa['calls'])
    assert sdpa['backends'] == ['flash (cpu)']
    assert sdpa['forced']['math']['status'] == 'ok' and sdpa['forced']['efficient_attention']['status'] == 'unavailable'
    assert any('scaled_dot_product' in k for k in sdpa['profile']['attention_ops'])
    # on a CPU the block-mask path falls back to the boolean mask in training: the same figures
    prefix = r['prefix']
    assert prefix['output_rel_err'] == 0 and prefix['grad_max_rel_err'] == 0
    assert prefix['config'].endswith('tiny_aim_vitb_800e.py') and prefix['prefix_len_range'] == [1, 3]  # 32 px, patch 16
    assert set(prefix['rows']) == {'prefix, block mask', 'prefix, boolean mask', 'causal'}
    assert prefix['rows']['causal']['time_over_causal'] == 1
    cp = r['checkpointing']
    assert cp['no_cp']['loss'] == cp['no_cp']['loss'] and cp['time_ratio'] > 0
    assert cp['config'].endswith('tiny_saim_vit-large-p16_8xb256-amp-coslr-800e_in1k.py')
    targets = {t['target']: t['verdict'] for t in report['targets']}
    assert targets['finite_fp16'] == 'met' and targets['speed_224'] == 'not measured'
