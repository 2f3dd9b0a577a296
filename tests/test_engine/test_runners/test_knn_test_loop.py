"""KNNTestLoop through mmengine's Runner: the configs/benchmarks/demo/knn_cpu.py protocol on a tiny image set,
loaded from a SAIM pre-training checkpoint or from its backbone-only conversion, single process and on 2 gloo
ranks, gives the accuracy of knn_classify on the same features."""
import os.path as osp
import uuid

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

import saim_mm  # noqa: F401
from saim_mm.checkpoint import extract_backbone
from saim_mm.engine import image_features
from saim_mm.evaluation import knn_classify
from saim_mm.utils import setup_cpu_distributed
from tests.conftest import REPO, spawn_gloo


def knn_cfg(data_root: str, work_dir: str, checkpoint: str, memory_size=None, k: int = 20) -> Config:
    """configs/benchmarks/demo/knn_cpu.py on ``data_root``, in the main process, loading ``checkpoint``."""
    cfg = Config.fromfile(osp.join(REPO, 'configs/benchmarks/demo/knn_cpu.py'))
    loaders = {'test_dataloader': cfg.test_dataloader, 'memory': cfg.test_cfg.memory_dataloader}
    for loader in loaders.values():
        loader.update(num_workers=0, persistent_workers=False, batch_size=7)  # batches that do not divide
        loader.dataset.data_root = data_root
    if memory_size is not None:
        cfg.test_cfg.memory_dataloader.dataset.indices = memory_size  # the first images only
    cfg.test_cfg.k = k
    cfg.load_from, cfg.work_dir = checkpoint, work_dir
    cfg.experiment_name = f'test_{uuid.uuid4().hex[:8]}'
    return cfg


@pytest.fixture(scope='module')
def checkpoints(demo_model, tmp_path_factory):
    """A SAIM pre-training checkpoint of the demo model and its backbone-only conversion."""
    out = tmp_path_factory.mktemp('knn_ckpt')
    state = demo_model.state_dict()
    torch.save({'state_dict': state, 'meta': {}}, out / 'saim.pth')
    torch.save({'state_dict': extract_backbone(state)[0], 'meta': {}}, out / 'backbone.pth')
    return {'saim': str(out / 'saim.pth'), 'backbone': str(out / 'backbone.pth')}


@torch.no_grad()
def features(model, loader):
    feats, labels = [], []
    for batch in loader:
        data = model.data_preprocessor(batch, False)
        feats.append(image_features(model.extract_feat(data['inputs'])))
        labels += [int(s.gt_label[0]) for s in data['data_samples']]
    return torch.cat(feats), torch.tensor(labels)


@pytest.mark.parametrize('kind', ['saim', 'backbone'])
def test_runner_test_gives_the_accuracy_of_knn_classify(kind, demo_data, demo_model, checkpoints, tmp_path):
    runner = Runner.from_cfg(knn_cfg(demo_data, str(tmp_path), checkpoints[kind]))
    metrics = runner.test()
    loop = runner.test_loop
    # the encoder is the pre-trained one, and nothing else was loaded into the classifier
    for name, value in runner.model.backbone.state_dict().items():
        assert torch.equal(value, demo_model.backbone.state_dict()[name]), name
    assert not runner.model.with_head
    bank, bank_labels = features(runner.model, loop.memory_dataloader)
    queries, labels = features(runner.model, loop.dataloader)
    assert bank.shape == (32, 96) and queries.shape == (8, 96)  # 8 and 2 images of each of the 4 classes
    assert torch.equal(loop.bank_labels, bank_labels) and torch.allclose(loop.bank, bank, atol=1e-6)
    scores = knn_classify(bank, bank_labels, queries, num_classes=4, k=20, temperature=0.07)
    expected = 100.0 * (scores.argmax(1) == labels).float().mean().item()
    assert set(metrics) == {'knn/top1'}
    assert metrics['knn/top1'] == pytest.approx(expected)


def test_k_larger_than_the_memory_bank_is_a_clear_error(demo_data, checkpoints, tmp_path):
    runner = Runner.from_cfg(knn_cfg(demo_data, str(tmp_path), checkpoints['saim'], memory_size=5, k=6))
    with pytest.raises(ValueError, match='k=6 must be between 1 and the number of training features N=5'):
        runner.test()


def _two_ranks(rank: int, data_root: str, checkpoint: str, work_dir: str, expected: dict) -> None:
    cfg = knn_cfg(data_root, work_dir, checkpoint, memory_size=31)  # 16 + 15 images: one is padded
    cfg.launcher = 'pytorch'
    setup_cpu_distributed(cfg)
    runner = Runner.from_cfg(cfg)
    metrics = runner.test()
    assert runner.test_loop.bank.shape == (31, 96), runner.test_loop.bank.shape
    assert metrics == pytest.approx(expected), (metrics, expected)


def test_two_gloo_ranks_give_the_single_process_figures(demo_data, checkpoints, tmp_path):
    single = Runner.from_cfg(knn_cfg(demo_data, str(tmp_path / 'single'), checkpoints['saim'], memory_size=31))
    expected = single.test()
    spawn_gloo(_two_ranks, demo_data, checkpoints['saim'], str(tmp_path / 'dist'), expected)


def test_image_features_take_the_cls_token_or_average_the_feature_map():
    cls = torch.randn(2, 8)
    assert image_features((torch.zeros(2, 8, 3, 3), cls)) is cls  # the last output of the backbone
    fmap = torch.arange(2 * 8 * 2 * 3, dtype=torch.float32).reshape(2, 8, 2, 3)
    assert torch.equal(image_features((fmap, )), fmap.flatten(2).mean(2))
    with pytest.raises(ValueError, match=r"gave \(2, 5, 8\). Use the backbone's out_type='cls_token' or 'featmap'"):
        image_features((torch.zeros(2, 5, 8), ))
