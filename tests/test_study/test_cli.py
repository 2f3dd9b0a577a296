"""tools/analysis/small_study.py over saim_mm.study: rows x seeds x protocols on any class-folder data set, tiny
settings."""
import json
import math
import os
import os.path as osp
import re
import statistics
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from saim_mm.study import PROTOCOLS, ImageFolderError, check_image_folder
from saim_mm.study.cli import main, parse_args
from saim_mm.utils.data_roots import DataRootNotFoundError
from tests.conftest import REPO

TINY = ['--epochs', '1', '--batch-size', '8', '--probe-epochs', '2', '--attentive-epochs', '2', '--knn-k', '3',
        '--jobs', '2']


def run_study(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, 'tools/analysis/small_study.py', *args], cwd=REPO, capture_output=True,
                          text=True, timeout=600, env={'PYTHONPATH': REPO, 'PATH': '/usr/bin:/bin'})


def make_folder(root: str, splits=('train', 'val'), classes=('ants', 'bees'), per_class: int = 4) -> str:
    """Images of odd sizes and modes (RGB, greyscale, RGBA, palette; PNG and JPEG) in class folders."""
    rng = np.random.default_rng(0)
    kinds = [((37, 23), 'RGB', 'png'), ((50, 61), 'L', 'jpg'), ((40, 40), 'RGBA', 'png'), ((29, 45), 'P', 'png')]
    for split in splits:
        for label, name in enumerate(classes):
            os.makedirs(osp.join(root, split, name), exist_ok=True)
            for i in range(per_class):
                (w, h), mode, ext = kinds[i % len(kinds)]
                pixels = rng.integers(0, 80, (h, w, 3), dtype=np.uint8) + np.uint8(150 * label)
                img = Image.fromarray(pixels).convert(mode)
                img.save(osp.join(root, split, name, f'{name}_{i}.{ext}'))
    return root


def table(stdout: str) -> dict:
    """Row name -> its cells, from the printed markdown table."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith('row | final pre-train loss | '))
    rows = {}
    for line in lines[start + 2:]:
        if ' | ' not in line:
            break
        cells = line.split(' | ')
        rows[cells[0]] = cells[1:]
    return rows


def test_image_folder_every_row_seed_and_protocol(tmp_path):
    data = make_folder(str(tmp_path / 'images'))
    work = str(tmp_path / 'study')
    proc = run_study('--data-root', data, '--work-dir', work, '--seeds', '0', '1', *TINY)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.load(open(osp.join(work, 'study.json')))
    assert report['data']['classes'] == ['ants', 'bees'] and report['data']['num_train'] == 8
    names = [r['name'] for r in report['rows']]
    assert names == ['SAIM stochastic', 'SAIM raster', 'MAE', 'random init']
    printed = table(proc.stdout)
    assert list(printed) == names
    for row in report['rows']:
        assert [r['seed'] for r in row['seeds']] == [0, 1]
        for index, key in enumerate(p.key for p in PROTOCOLS):
            values = [r[key] for r in row['seeds']]
            assert all(math.isfinite(v) and 0 <= v <= 100 for v in values), (row['name'], key, values)
            assert row['summary'][key]['mean'] == pytest.approx(statistics.mean(values))
            assert row['summary'][key]['std'] == pytest.approx(statistics.stdev(values))
            cell = printed[row['name']][1 + index]
            assert cell == f'{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f}'
        if row['pretrained']:
            assert all(len(r['curve']) == 1 and math.isfinite(r['final_loss']) for r in row['seeds'])
            assert re.fullmatch(r'\d+\.\d{3} ± \d+\.\d{3}', printed[row['name']][0])
        else:
            assert printed[row['name']][0] == '-'
    # the MAE row pre-trained mmpretrain's MAE at the chosen sizes, from a dumped config
    dumped = open(osp.join(work, 'MAE', 'seed1', 'pretrain_config.py')).read()
    assert "type='MAE'" in dumped and 'seed=1' in dumped and data in dumped
    assert report['machine']['cpu_count'] == os.cpu_count() and report['seconds'] > 0
    assert report['command'].startswith('python tools/analysis/small_study.py') and report['versions']['torch']
    for png, size in (('loss_curves.png', (720, 480)), ('protocols.png', (960, 480))):
        with Image.open(osp.join(work, png)) as im:
            assert im.size == size
    assert re.search(r'wall time \d+ s', proc.stdout)


def test_synthetic_default_data_and_a_configs_row(tmp_path):
    work = str(tmp_path / 'study')
    proc = run_study('--work-dir', work, '--train-per-class', '2', '--val-per-class', '1', '--seeds', '3',
                     '--rows', 'random init', '--configs', 'configs/saim/variants/demo/narrow.py', '--img-size', '16',
                     *TINY)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.load(open(osp.join(work, 'study.json')))
    assert report['data']['synthetic'] and report['data']['classes'] == ['checker', 'disc', 'square', 'stripes']
    assert report['data']['root'] == osp.join(work, 'data')
    assert [r['name'] for r in report['rows']] == ['configs/saim/variants/demo/narrow', 'random init']
    assert all(r['summary']['linear_cls']['std'] is None for r in report['rows'])  # one seed: no spread
    assert "img_size=16" in open(osp.join(work, 'configs_saim_variants_demo_narrow', 'seed3',
                                          'pretrain_config.py')).read()
    printed = table(proc.stdout)
    assert list(printed) == [r['name'] for r in report['rows']]
    narrow = report['rows'][0]
    assert printed[narrow['name']][1] == f"{narrow['seeds'][0]['linear_cls']:.1f}"  # one seed: the figure itself


def break_folder(root: str, how: str) -> None:
    if how == 'no val':
        make_folder(root, splits=('train', ))
    elif how == 'other classes':
        make_folder(root, splits=('train', ))
        make_folder(root, splits=('val', ), classes=('ants', 'bees', 'wasps'))
    elif how == 'empty class':
        make_folder(root)
        for split in ('train', 'val'):
            os.makedirs(osp.join(root, split, 'empty'))
            open(osp.join(root, split, 'empty', 'notes.txt'), 'w').close()


@pytest.mark.parametrize('how, error, message', [
    ('no val', DataRootNotFoundError, r'images/val does not exist'),
    ('other classes', ImageFolderError,
     r"class folders of .*/train and .*/val differ: only in train: \[\], only in val: \['wasps'\]"),
    ('empty class', ImageFolderError, r'class folder .*/train/empty holds no image'),
])
def test_bad_image_folders_are_named(tmp_path, how, error, message):
    root = str(tmp_path / 'images')
    break_folder(root, how)
    with pytest.raises(error, match=message):
        check_image_folder(root)


def test_bad_image_folder_stops_the_tool_with_its_name(tmp_path):
    root = make_folder(str(tmp_path / 'images'), splits=('val', ))
    proc = run_study('--data-root', root, '--work-dir', str(tmp_path / 'study'))
    assert proc.returncode != 0
    assert f'{root}/train does not exist' in proc.stderr and proc.stderr.startswith('small_study: ')
    assert 'Traceback' not in proc.stderr


def test_few_label_columns_in_the_table_and_study_json(tmp_path):
    work = str(tmp_path / 'study')
    proc = run_study('--work-dir', work, '--train-per-class', '3', '--val-per-class', '2', '--seeds', '0', '1',
                     '--rows', 'random init', '--img-size', '16', '--labels-per-class', '1', '--label-fraction',
                     '0.5', '--label-draws', '2', *TINY)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.load(open(osp.join(work, 'study.json')))
    assert report['data']['label_budgets'] == [
        dict(key='1pc', title='1/class', kind='per_class', value=1),
        dict(key='50pct', title='50 %', kind='fraction', value=0.5)] and report['data']['label_draws'] == 2
    columns = [f'{p.key}@{b}' for b in ('1pc', '50pct') for p in PROTOCOLS]
    assert list(report['protocols']) == [p.key for p in PROTOCOLS] + columns
    row, = report['rows']
    for record in row['seeds']:
        assert record['subset_sizes'] == {'1pc': [4, 4], '50pct': [8, 8]}  # 4 classes of 3: 1 and 2 a class
        assert all(len(record[c]) == 2 and all(0 <= v <= 100 for v in record[c]) for c in columns)
    printed = table(proc.stdout)['random init']
    for index, column in enumerate(columns):
        pooled = [v for record in row['seeds'] for v in record[column]]  # 2 seeds x 2 draws
        assert row['summary'][column]['mean'] == pytest.approx(statistics.mean(pooled))
        assert printed[1 + len(PROTOCOLS) + index] == f'{statistics.mean(pooled):.1f} ± {statistics.stdev(pooled):.1f}'
    assert 'few-label: seeds x 2 draws' in proc.stdout
    with Image.open(osp.join(work, 'few_label.png')) as im:
        assert im.size == (1440, 480)  # 10 groups, 1.2 inches each


@pytest.mark.parametrize('flags, message', [
    (['--label-fraction', '0'], r'--label-fraction must be in \(0, 1\], got 0\.0\.'),
    (['--labels-per-class', '1', '--label-draws', '0'], r'--label-draws must be >= 1, got 0\.'),
])
def test_bad_few_label_flags_are_refused_with_their_values(flags, message, capsys):
    with pytest.raises(SystemExit) as stop:
        parse_args(flags)
    assert stop.value.code == 2 and re.search(message, capsys.readouterr().err)


def test_more_labels_per_class_than_the_smallest_class_stops_the_study_with_its_name(tmp_path):
    root = make_folder(str(tmp_path / 'images'), per_class=2)
    with pytest.raises(SystemExit, match=r"small_study: --labels-per-class 3 is larger than the smallest class of "
                                         r"the training images: 'ants' has 2; use at most 2\."):
        main(['--data-root', root, '--work-dir', str(tmp_path / 'study'), '--rows', 'random init',
              '--labels-per-class', '3'])
    assert not osp.exists(osp.join(tmp_path, 'study', 'study.json'))


def test_a_row_takes_its_teacher_from_another_rows_checkpoint(tmp_path):
    work = str(tmp_path / 'study')
    digpt = 'configs/saim/family/demo/digpt'
    proc = run_study('--work-dir', work, '--train-per-class', '2', '--val-per-class', '1', '--seeds', '4',
                     '--rows', 'SAIM stochastic', '--configs', f'{digpt}.py', '--teacher-from',
                     f'{digpt}=SAIM stochastic', '--img-size', '16', *TINY)
    assert proc.returncode == 0, proc.stderr[-3000:]
    source = osp.join(work, 'SAIM_stochastic', 'seed4', 'epoch_1.pth')
    dumped = open(osp.join(work, 'configs_saim_family_demo_digpt', 'seed4', 'pretrain_config.py')).read()
    assert re.search(rf"checkpoint=\s*'{re.escape(source)}'", dumped)
    order = [line.split(':')[0] for line in proc.stdout.splitlines() if line.startswith('pre-trained ')]
    assert order == ['pre-trained SAIM stochastic, seed 4', f'pre-trained {digpt}, seed 4']  # --jobs 2: in turn
    report = json.load(open(osp.join(work, 'study.json')))
    assert [r['teacher_from'] for r in report['rows']] == [None, 'SAIM stochastic']
    assert all(math.isfinite(r['seeds'][0]['final_loss']) for r in report['rows'])


def test_a_teacher_from_an_unknown_row_stops_the_study(tmp_path):
    with pytest.raises(SystemExit, match=r"small_study: --teacher-from 'MAE=SAIM': SOURCE 'SAIM' is not a row of "
                                         r"the study; rows: \['MAE'\]\."):
        main(['--work-dir', str(tmp_path), '--rows', 'MAE', '--teacher-from', 'MAE=SAIM'])
