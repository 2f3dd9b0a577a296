"""saim_mm.study.runs: a row's pre-training config follows the study's epochs, sizes and seed."""
import os.path as osp

import pytest

from saim_mm.study.runs import (DEFAULT_ROWS, MAE, RANDOM, config_row, dependency_levels, final_checkpoint,
                               fit_schedule, row_config, with_teachers, work_dir_of)
from tests.conftest import REPO


def test_schedule_follows_the_epochs():
    demo = [dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=2, convert_to_iter_based=True),
            dict(type='CosineAnnealingLR', T_max=28, by_epoch=True, begin=2, end=30, convert_to_iter_based=True)]
    warm, cos = fit_schedule(demo, 30, 15, 4)  # half the epochs, 4 iterations each
    assert (warm['begin'], warm['end'], cos['begin'], cos['end'], cos['T_max']) == (0, 4, 4, 60, 56)
    assert not warm['by_epoch'] and 'convert_to_iter_based' not in cos
    only = fit_schedule(demo, 30, 1, 2)  # the warm-up would span no iteration
    assert [(s['type'], s['begin'], s['end']) for s in only] == [('CosineAnnealingLR', 0, 2)]
    with pytest.raises(ValueError, match='epoch-based schedules only'):
        fit_schedule([dict(type='LinearLR', by_epoch=False, begin=0, end=5)], 30, 15, 4)


def test_row_config_sets_data_sizes_epochs_and_seed(tmp_path):
    row = DEFAULT_ROWS['MAE']
    cfg = row_config(row, '/data/x', 16, 4, 3, 8, seed=5, num_train=20, work_dir=str(tmp_path / 'w'))
    assert cfg.model.backbone.img_size == 16 and cfg.model.neck.num_patches == 16 and cfg.model.head.patch_size == 4
    assert cfg.train_dataloader.dataset.data_root == '/data/x' and cfg.train_dataloader.batch_size == 8
    assert cfg.train_cfg.max_epochs == 3 and cfg.randomness.seed == 5 and row.config == MAE
    assert max(s['end'] for s in cfg.param_scheduler) == 3 * 3  # 3 epochs of ceil(20 / 8) iterations
    raster = row_config(DEFAULT_ROWS['SAIM raster'], '/data/x', 16, 4, 1, 8, 0, 20, str(tmp_path))
    assert raster.model.order == 'raster'
    assert work_dir_of('/w', DEFAULT_ROWS['SAIM raster'], 2) == osp.join('/w', 'SAIM_raster', 'seed2')


DIGPT = osp.join(REPO, 'configs/saim/family/demo/digpt.py')


def test_teacher_from_another_row_reads_its_checkpoint_of_the_same_seed(tmp_path):
    rows = with_teachers([config_row(DIGPT), DEFAULT_ROWS['SAIM stochastic'], DEFAULT_ROWS[RANDOM]],
                         ['configs/saim/family/demo/digpt=SAIM stochastic'])
    assert rows[0].teacher_from == 'SAIM stochastic' and rows[1].teacher_from is None
    assert [[r.name for r in level] for level in dependency_levels(rows)] == [
        ['SAIM stochastic', RANDOM], ['configs/saim/family/demo/digpt']]
    checkpoint = final_checkpoint('/w', rows[1], 2, 7)
    assert checkpoint == osp.join('/w', 'SAIM_stochastic', 'seed2', 'epoch_7.pth')
    cfg = row_config(rows[0], '/data/x', 16, 4, 7, 8, 2, 20, str(tmp_path), teacher_checkpoint=checkpoint)
    teacher = cfg.model.head.teacher
    assert teacher.checkpoint == checkpoint and (teacher.model.img_size, teacher.model.patch_size) == (16, 4)


def test_a_row_of_configs_may_be_named_by_its_config_file():
    rows = [config_row(DIGPT), DEFAULT_ROWS['SAIM stochastic']]
    assert with_teachers(rows, ['configs/saim/family/demo/digpt.py=SAIM stochastic']) == \
        with_teachers(rows, ['configs/saim/family/demo/digpt=SAIM stochastic'])


def test_a_cycle_of_teachers_is_refused_with_its_rows():
    a = DEFAULT_ROWS['SAIM stochastic']._replace(teacher_from='SAIM raster')
    b = DEFAULT_ROWS['SAIM raster']._replace(teacher_from='SAIM stochastic')
    with pytest.raises(ValueError, match=r"--teacher-from makes a cycle: \['SAIM stochastic=SAIM raster', "
                                         r"'SAIM raster=SAIM stochastic'\]"):
        dependency_levels([a, b, DEFAULT_ROWS['MAE']])


@pytest.mark.parametrize('pair, message', [
    ('digpt', r"--teacher-from takes ROW=SOURCE \(two row names\), got 'digpt'"),
    ('configs/saim/family/demo/digpt=SAIM', r"SOURCE 'SAIM' is not a row of the study; rows: \["),
    ('configs/saim/family/demo/digpt=random init', r"SOURCE must be another, pre-trained row, got 'random init'"),
    ('SAIM stochastic=MAE', r"configs/saim/demo_cpu.py has no PretrainedTeacher at model.head.teacher "
                            r"\(got None\)"),
])
def test_bad_teacher_pairs_are_named(pair, message):
    rows = [config_row(DIGPT), DEFAULT_ROWS['SAIM stochastic'], DEFAULT_ROWS['MAE'], DEFAULT_ROWS[RANDOM]]
    with pytest.raises(ValueError, match=message):
        with_teachers(rows, [pair])
