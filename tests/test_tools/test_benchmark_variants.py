"""tools/analysis/benchmark_variants.py on configs of the autoregressive family: a row with an EMA teacher and
a semantic order, a row whose pre-trained teacher's checkpoint is absent, the AIM demo; the counts are those
of saim_mm.analysis.cost and the table gives the no-grad part and the ratios to the content stream."""
import importlib.util
import os.path as osp

import pytest
import torch

from tests.conftest import REPO

DEMO = osp.join(REPO, 'configs/saim/demo_cpu.py')
AIM = 'configs/saim/family/demo/aim.py'
TEACHER_VIT = dict(type='mmpretrain.VisionTransformer', arch=dict(embed_dims=32, num_layers=2, num_heads=2,
                                                                  feedforward_channels=64), img_size=16, patch_size=4)


@pytest.fixture(scope='module')
def tool():
    spec = importlib.util.spec_from_file_location('benchmark_variants',
                                                  osp.join(REPO, 'tools/analysis/benchmark_variants.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def configs(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp('family')
    texts = dict(
        semantic=f"_base_ = [{DEMO!r}]\nmodel = dict(order=dict(_delete_=True, type='SemanticOrder', "
                 "source='teacher'), head=dict(_delete_=True, type='FeatureTargetHead', patch_size=4, "
                 "teacher=dict(type='EMATeacher'), "
                 "feature_dims=96))\n",
        pretrained=f"_base_ = [{osp.join(REPO, AIM)!r}]\nmodel = dict(head=dict(_delete_=True, "
                   "type='FeatureTargetHead', patch_size=4, loss='cosine', teacher=dict(type='PretrainedTeacher', "
                   f"model={TEACHER_VIT!r}, checkpoint={str(root / 'absent.pth')!r})))\n")
    paths = {}
    for name, text in texts.items():
        paths[name] = str(root / f'{name}.py')
        with open(paths[name], 'w') as f:
            f.write(text)
    return paths


def case(row: str) -> dict:
    return dict(row=row, arch=dict(embed_dims=24, num_layers=4, num_heads=2, feedforward_channels=48), img_size=16,
                batch=2, threads=1, warmup=0, repeats=1)


def test_rows_of_the_family_are_timed_and_counted_with_their_no_grad_part(tool, configs):
    rows = {name: tool.run_case(case(path)) for name, path in configs.items()}
    rows['aim'] = tool.run_case(case(AIM))
    for name, r in rows.items():
        assert r['step_s'] > 0 and r['gflops_per_image'] > 0, name
    # EMA teacher (width 24, 4 blocks: fitted to the encoder) and an order scored by it: one forward of the encoder each
    N, L, C = 16, 17, 24
    forward = (2 * N * 48 * C + 4 * (2 * L * C * 3 * C + 2 * L * C * C + 4 * L * C * 48) + 4 * 4 * L * L * C) / 1e9
    assert rows['semantic']['gflops_no_grad'] == dict(order=pytest.approx(forward), target=pytest.approx(forward))
    # the pre-trained teacher's own ViT (width 32, 2 blocks), with random weights in place of the absent file
    C = 32
    teacher = (2 * N * 48 * C + 2 * (2 * L * C * 3 * C + 2 * L * C * C + 4 * L * C * 64) + 2 * 4 * L * L * C) / 1e9
    assert rows['pretrained']['gflops_no_grad'] == dict(order=0, target=pytest.approx(teacher))
    assert rows['aim']['gflops_no_grad'] == dict(order=0, target=0)  # raster, pixels without smoothing
    # the same encoder and MLP neck (128 wide), only the teacher and the prediction width (48 pixels, 32 features)
    # of the neck's last layer (3 x its forward over the 16 steps) differ
    trained = rows['pretrained']['gflops_per_image'] - rows['pretrained']['gflops_no_grad']['target']
    assert rows['aim']['gflops_per_image'] - trained == pytest.approx(3 * 2 * 16 * 128 * (48 - 32) / 1e9)


def test_encoder_bound_teachers_follow_the_arch(tool, configs):
    from mmengine.config import Config
    cfg = Config.fromfile(configs['semantic']).model
    cfg.backbone.arch = 'deit-tiny'
    tool.fit_teacher(cfg)
    assert cfg.head.feature_dims == 192
    model = tool.build(configs['pretrained'], 'deit-tiny', 16)
    assert model.head.teacher.out_channels == 32 and model.training
    assert not osp.exists(Config.fromfile(configs['pretrained']).model.head.teacher.checkpoint)


def test_table_gives_the_no_grad_part_and_the_ratios_to_the_content_stream(tool, capsys):
    def row(name, gflops, step, order=0.0, target=0.0):
        return dict(row=name, gflops_per_image=gflops, step_s=step, peak_mem_mib=100.0,
                    gflops_no_grad=dict(order=order, target=target))

    tool.print_table([row(tool.PAPER, 200.0, 8.0), row('configs/saim/family/semaim.py', 300.0, 10.0, 50.0, 50.0),
                      row(tool.FLOOR, 100.0, 4.0), row(tool.MAE, 50.0, 2.0)])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split(' | ')[2] == 'of which no-grad (order + target)'
    assert lines[0].split(' | ')[7:9] == ['time / floor', 'GFLOPs / floor']
    assert lines[3].split(' | ') == ['semaim.py', '300.0', '50.0 + 50.0', '10.00', '100', '1.25', '1.00', '2.50',
                                     '3.00', '5.00']


def test_counts_do_not_depend_on_the_batch(tool, configs):
    from saim_mm.analysis.cost import training_flops_by_part
    model = tool.build(configs['semantic'], case('')['arch'], 16)
    one, two = (training_flops_by_part(model, lambda m, x: tool.loss_of(m, configs['semantic'], x),
                                      torch.randn(b, 3, 16, 16)) for b in (1, 2))
    assert one == two
