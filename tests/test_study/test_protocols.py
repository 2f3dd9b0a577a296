"""saim_mm.study.protocols: the encoder is the benchmark configs' ViT with the row's weights, and each probe is
the classes, optimiser and schedule its config names."""
import pytest
import torch
from mmengine.config import Config
from mmpretrain.registry import MODELS

import saim_mm  # noqa: F401
from saim_mm.evaluation import knn_classify
from saim_mm.study.protocols import (PROTOCOLS, FeatureSet, build_encoder, features, probe_config, run_protocols,
                                     train_probe)
from saim_mm.study.runs import DEMO, MAE


def saved_model(cfg_path: str, path: str, seed: int = 0):
    cfg = Config.fromfile(cfg_path)
    torch.manual_seed(seed)
    model = MODELS.build(cfg.model)
    model.init_weights()
    torch.save(dict(state_dict=model.state_dict(), meta=dict(epoch=1)), path)
    return cfg, model.eval()


@pytest.mark.parametrize('config', [MAE, DEMO])
def test_encoder_is_read_from_the_checkpoint_as_the_unmasked_vit(tmp_path, config):
    cfg, model = saved_model(config, str(tmp_path / 'model.pth'))
    encoder = build_encoder(cfg, str(tmp_path / 'model.pth'), seed=1)
    images = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8)
    feats = features(encoder, images, torch.tensor([0, 1, 0]), batch=2)
    assert feats.cls.shape == feats.mean.shape == (3, 96) and feats.patches.shape == (3, 64, 96)
    with torch.no_grad():
        x = model.data_preprocessor(dict(inputs=images, data_samples=None))['inputs']
        backbone = model.backbone
        backbone.out_type = 'raw'
        tokens = (backbone(x) if config == DEMO else model.extract_feat(x))[-1]
    assert torch.allclose(feats.cls, tokens[:, 0], atol=1e-5)
    assert torch.allclose(feats.patches, tokens[:, 1:], atol=1e-5)
    assert torch.allclose(feats.mean, tokens[:, 1:].mean(1), atol=1e-5)


def test_random_row_is_the_seeded_initialisation():
    cfg = Config.fromfile(DEMO)
    a, b, c = (build_encoder(cfg, None, seed) for seed in (3, 3, 4))
    assert torch.equal(a.backbone.cls_token, b.backbone.cls_token)
    assert not torch.equal(a.backbone.layers[0].attn.qkv.weight, c.backbone.layers[0].attn.qkv.weight)


def test_probe_config_overrides_the_named_keys_and_stretches_the_schedule():
    cfg = probe_config('linear', 5, 32, 2, num_train=100, options=dict(epochs=9, batch=25, lr=0.5, weight_decay=None))
    assert (cfg.model.head.num_classes, cfg.model.head.in_channels, cfg.model.neck.input_features) == (5, 32, 32)
    assert cfg.optim_wrapper.optimizer.type == 'LARS' and cfg.optim_wrapper.optimizer.lr == 0.5
    assert cfg.train_cfg.max_epochs == 9 and cfg.train_dataloader.batch_size == 25
    warm, cos = cfg.param_scheduler  # linear_cpu.py: 10 warm-up epochs of 90, stretched to 9 x 4 iterations
    assert (warm.type, warm.end, cos.type, cos.begin, cos.end) == ('LinearLR', 4, 'CosineAnnealingLR', 4, 36)
    attentive = probe_config('attentive', 5, 32, 2, 100, dict(weight_decay=0.1))
    assert attentive.model.head.type == 'AttentiveProbeHead' and attentive.model.head.num_heads == 2
    assert attentive.optim_wrapper.optimizer.weight_decay == 0.1 and attentive.train_cfg.max_epochs == 90
    assert probe_config('knn', 5, 32, 2, 100, dict(k=3)).test_cfg.k == 3
    with pytest.raises(KeyError, match=r"k-NN options are k and temperature, got \['lr'\]"):
        probe_config('knn', 5, 32, 2, 100, dict(lr=1.0))
    with pytest.raises(KeyError, match="probe 'svm' is not one of"):
        probe_config('svm', 5, 32, 2, 100)


def separable(n: int, seed: int) -> FeatureSet:
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 3
    centres = torch.eye(3, 16) * 4
    cls = centres[labels] + 0.3 * torch.randn(n, 16, generator=g)
    patches = cls[:, None] + 0.3 * torch.randn(n, 4, 16, generator=g)
    return FeatureSet(cls, patches.mean(1), patches, labels)


def test_linear_probe_is_the_configs_neck_head_optimiser_and_schedule():
    train = separable(60, 0)
    cfg = probe_config('linear', 3, 16, 2, 60, dict(epochs=4, batch=16))
    probe = train_probe(cfg, train.cls, train.labels, seed=0)
    assert type(probe.neck).__name__ == 'ClsBatchNormNeck' and type(probe.head).__name__ == 'LinearClsHead'
    assert not probe.training and type(probe.head.loss_module).__name__ == 'CrossEntropyLoss'
    again = train_probe(cfg, train.cls, train.labels, seed=0)
    assert torch.equal(probe.head.fc.weight, again.head.fc.weight)  # seeded


def test_every_protocol_separates_separable_features():
    train, val = separable(90, 0), separable(30, 1)
    configs = {probe: probe_config(probe, 3, 16, 2, 90, opts) for probe, opts in (
        ('linear', dict(epochs=60, batch=32)), ('attentive', dict(epochs=20, batch=32)), ('knn', dict(k=5)))}
    top1 = run_protocols(train, val, 3, configs, seed=0)
    assert list(top1) == [p.key for p in PROTOCOLS]
    assert all(v == 100.0 for v in top1.values()), top1
    scores = knn_classify(train.cls, train.labels, val.cls, 3, k=5, temperature=0.07)
    assert top1['knn_cls'] == 100.0 * float((scores.argmax(1) == val.labels).float().mean())


def test_feature_set_selects_images():
    feats = separable(6, 0)
    few = feats.select(torch.tensor([0, 4]))
    assert torch.equal(few.labels, torch.tensor([0, 1])) and torch.equal(few.patches, feats.patches[[0, 4]])
