"""The study's protocols on frozen encoders, each the implementation ``configs/benchmarks/demo/`` runs.

- **linear** (``linear_cpu.py``): the config's neck and head (``ClsBatchNormNeck`` + ``LinearClsHead`` with its
  loss and init), optimiser wrapper (LARS) and parameter schedulers (warm-up, cosine), on the cls token and
  on the mean of the patch tokens;
- **attentive** (``attentive_cpu.py``): the config's ``AttentiveProbeHead`` and AdamW, on the patch tokens;
- **k-NN** (``knn_cpu.py``): :func:`saim_mm.evaluation.knn_classify` (what ``KNNTestLoop`` runs) with the
  config's ``k`` and temperature, on the cls token and on the mean of the patch tokens.

The encoder is the probe config's backbone (mmpretrain's ``VisionTransformer``) in the row's architecture,
loaded with the encoder weights of the row's checkpoint, and its features are computed once per seed; the
probes are trained on these cached features, stepping the config's optimiser and schedulers once per
batch as mmengine's loop does. The study's flags override the config keys named in :func:`probe_config`.
A new protocol is one more :class:`Protocol` (a probe of :data:`PROBES` on one feature of
:class:`FeatureSet`).
"""
import math
import os.path as osp
from typing import Callable, Dict, NamedTuple, Optional, Sequence

import torch
from mmengine.config import Config
from mmengine.model import BaseModule
from mmengine.registry import DefaultScope
from mmengine.utils import import_modules_from_strings
from torch import Tensor, nn

from .data import REPO
from .runs import fit_schedule

PROBE_CONFIGS = {
    'linear': osp.join(REPO, 'configs/benchmarks/demo/linear_cpu.py'),
    'attentive': osp.join(REPO, 'configs/benchmarks/demo/attentive_cpu.py'),
    'knn': osp.join(REPO, 'configs/benchmarks/demo/knn_cpu.py'),
}
FEATURES = ('cls', 'mean', 'patches')


class Protocol(NamedTuple):
    """One column of the study: ``probe`` (a key of :data:`PROBES`) on ``feature`` (one of :data:`FEATURES`)."""
    key: str
    title: str
    probe: str
    feature: str


PROTOCOLS = (
    Protocol('linear_cls', 'linear (cls)', 'linear', 'cls'),
    Protocol('linear_mean', 'linear (mean-pool)', 'linear', 'mean'),
    Protocol('attentive', 'attentive (patch tokens)', 'attentive', 'patches'),
    Protocol('knn_cls', 'k-NN (cls)', 'knn', 'cls'),
    Protocol('knn_mean', 'k-NN (mean-pool)', 'knn', 'mean'),
)


class FeatureSet(NamedTuple):
    """Frozen features of a set of images: cls token (N, C), mean of the patch tokens (N, C), patch tokens
    (N, L, C), all after the final norm, and the (N, ) labels."""
    cls: Tensor
    mean: Tensor
    patches: Tensor
    labels: Tensor

    def select(self, index: Tensor) -> 'FeatureSet':
        """The images at ``index`` (e.g. a few labels per class)."""
        return FeatureSet(*(t[index] for t in self))


def with_imports(cfg: Config) -> Config:
    """``cfg`` after importing its ``custom_imports`` (registering saim_mm's types), as mmengine's Runner does."""
    if cfg.get('custom_imports'):
        import_modules_from_strings(**cfg.custom_imports)
    return cfg


def build_encoder(row_cfg: Config, checkpoint: Optional[str], seed: int) -> nn.ModuleDict:
    """The frozen encoder of a row, in eval mode: ``backbone`` and ``data_preprocessor`` of the linear probe
    config, the backbone in the architecture of the row's encoder and returning every token (``out_type='raw'``).

    The weights are the encoder (``backbone.*``) of ``checkpoint`` (read weights-only), or, without one, of
    the row's model initialised under ``seed`` (the random-init row).
    """
    from mmpretrain.registry import MODELS

    from ..checkpoint import extract_backbone, load_state_dict_file
    probe = with_imports(Config.fromfile(PROBE_CONFIGS['linear'])).model
    with_imports(row_cfg)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        torch.manual_seed(seed)
        row_model = MODELS.build(row_cfg.model)
        if checkpoint is None:
            row_model.init_weights()
            state = row_model.state_dict()
        else:
            state, _ = load_state_dict_file(checkpoint)
        weights, _ = extract_backbone(state)
        source = row_model.backbone
        arch = {k: source.arch_settings[k] for k in ('embed_dims', 'num_layers', 'num_heads', 'feedforward_channels')}
        backbone = MODELS.build(dict(probe.backbone, arch=arch, img_size=row_cfg.model.backbone.img_size,
                                     patch_size=row_cfg.model.backbone.patch_size, out_type='raw',
                                     frozen_stages=arch['num_layers'], init_cfg=None))
        backbone.load_state_dict({k[len('backbone.'):]: v for k, v in weights.items()})
        encoder = nn.ModuleDict(dict(backbone=backbone, data_preprocessor=MODELS.build(probe.data_preprocessor)))
    return encoder.eval()


@torch.no_grad()
def features(encoder: nn.ModuleDict, images: Tensor, labels: Tensor, batch: int = 256) -> FeatureSet:
    """The :class:`FeatureSet` of decoded (N, 3, H, W) uint8 images."""
    parts = []
    for chunk in images.split(batch):
        x = encoder.data_preprocessor(dict(inputs=chunk, data_samples=None), False)['inputs']
        tokens = encoder.backbone(x)[-1]  # (B, 1 + L, C) after the final norm
        patches = tokens[:, encoder.backbone.num_extra_tokens:]
        parts.append((tokens[:, 0], patches.mean(1), patches))
    return FeatureSet(*(torch.cat(p) for p in zip(*parts)), labels)


def probe_config(probe: str, num_classes: int, embed_dims: int, num_heads: int, num_train: int,
                 options: Optional[dict] = None) -> Config:
    """The config of ``probe`` for the data and encoder, with the study's ``options``.

    Options (None: the config's value): linear and attentive ``epochs`` (``train_cfg.max_epochs``; the
    schedulers are stretched to it), ``batch`` (``train_dataloader.batch_size``), ``lr`` and
    ``weight_decay`` (``optim_wrapper.optimizer``); k-NN ``k`` and ``temperature`` (``test_cfg``).

    Raises:
        KeyError: ``probe`` is not one of :data:`PROBE_CONFIGS`, or an option is not one it takes.
    """
    if probe not in PROBE_CONFIGS:
        raise KeyError(f'probe {probe!r} is not one of {sorted(PROBE_CONFIGS)}.')
    options = {k: v for k, v in (options or {}).items() if v is not None}
    cfg = with_imports(Config.fromfile(PROBE_CONFIGS[probe]))
    if probe == 'knn':
        unknown = sorted(set(options) - {'k', 'temperature'})
        if unknown:
            raise KeyError(f'k-NN options are k and temperature, got {unknown}.')
        cfg.test_cfg.update(options)
        return cfg
    unknown = sorted(set(options) - {'epochs', 'batch', 'lr', 'weight_decay'})
    if unknown:
        raise KeyError(f'{probe} probe options are epochs, batch, lr and weight_decay, got {unknown}.')
    head = dict(num_classes=num_classes, in_channels=embed_dims)
    if probe == 'attentive':
        head['num_heads'] = num_heads
    else:
        cfg.model.neck.input_features = embed_dims
    cfg.model.head.update(head)
    for key in ('lr', 'weight_decay'):
        if key in options:
            cfg.optim_wrapper.optimizer[key] = options[key]
    batch = options.get('batch', cfg.train_dataloader.batch_size)
    epochs = options.get('epochs', cfg.train_cfg.max_epochs)
    cfg.param_scheduler = fit_schedule(cfg.param_scheduler, cfg.train_cfg.max_epochs, epochs,
                                       math.ceil(num_train / batch))
    cfg.train_dataloader.batch_size = batch
    cfg.train_cfg.max_epochs = epochs
    return cfg


class CachedFeatureProbe(BaseModule):
    """The neck and head of a probe config on cached backbone outputs: ``ImageClassifier.loss`` without its
    backbone (mmpretrain's classifier needs one; here the frozen encoder ran once, before).

    Args:
        neck (dict, optional): The config's ``model.neck``.
        head (dict): The config's ``model.head``.
    """

    def __init__(self, neck: Optional[dict], head: dict) -> None:
        from mmpretrain.registry import MODELS
        super().__init__()
        self.neck = MODELS.build(neck) if neck else None
        self.head = MODELS.build(head)

    def feats(self, x: Tensor) -> tuple:
        return self.neck((x, )) if self.neck is not None else (x, )

    def loss(self, x: Tensor, data_samples: list) -> Dict[str, Tensor]:
        return self.head.loss(self.feats(x), data_samples)

    def forward(self, x: Tensor) -> Tensor:
        """(B, num_classes) logits."""
        return self.head(self.feats(x))


def top1(scores: Tensor, labels: Tensor) -> float:
    """Top-1 accuracy (%) by mmpretrain's ``Accuracy`` (the configs' evaluator)."""
    from mmpretrain.evaluation import Accuracy
    return float(Accuracy.calculate(scores, labels, topk=(1, ))[0][0])


def train_probe(cfg: Config, train_x: Tensor, train_y: Tensor, seed: int) -> CachedFeatureProbe:
    """Train the config's probe on cached features: its optimiser wrapper and schedulers, one step per batch
    of ``train_dataloader.batch_size`` shuffled features, ``train_cfg.max_epochs`` epochs; in eval mode after.

    A last batch of one feature (which BatchNorm cannot normalise in training) is skipped.
    """
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import PARAM_SCHEDULERS
    from mmpretrain.structures import DataSample
    torch.manual_seed(seed)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        probe = CachedFeatureProbe(cfg.model.get('neck'), cfg.model.head)
        probe.init_weights()
        optim = build_optim_wrapper(probe, cfg.optim_wrapper)
        schedulers = [PARAM_SCHEDULERS.build(s, default_args=dict(optimizer=optim)) for s in cfg.param_scheduler]
    samples = [DataSample().set_gt_label(int(y)) for y in train_y]
    probe.train()
    for _ in range(cfg.train_cfg.max_epochs):
        for idx in torch.randperm(len(train_x)).split(cfg.train_dataloader.batch_size):
            if len(idx) < 2:
                continue
            losses = probe.loss(train_x[idx], [samples[i] for i in idx.tolist()])
            optim.update_params(sum(v for k, v in losses.items() if 'loss' in k))
            for scheduler in schedulers:
                scheduler.step()
    return probe.eval()


def trained_probe_top1(cfg: Config, train_x: Tensor, train_y: Tensor, val_x: Tensor, val_y: Tensor,
                       num_classes: int, seed: int) -> float:
    """Top-1 (%) on ``val_x`` of the probe of ``cfg`` trained on ``train_x``."""
    probe = train_probe(cfg, train_x, train_y, seed)
    with torch.no_grad():
        scores = torch.cat([probe(x) for x in val_x.split(cfg.train_dataloader.batch_size)])
    return top1(scores, val_y)


def knn_top1(cfg: Config, train_x: Tensor, train_y: Tensor, val_x: Tensor, val_y: Tensor, num_classes: int,
             seed: int) -> float:
    """Top-1 (%) of the weighted k-NN of ``cfg.test_cfg`` (k at most the number of training features)."""
    from ..evaluation import knn_classify
    k = min(cfg.test_cfg.k, len(train_x))
    return top1(knn_classify(train_x, train_y, val_x, num_classes, k=k, temperature=cfg.test_cfg.temperature),
                val_y)


PROBES: Dict[str, Callable[..., float]] = dict(linear=trained_probe_top1, attentive=trained_probe_top1, knn=knn_top1)


def run_protocols(train: FeatureSet, val: FeatureSet, num_classes: int, configs: Dict[str, Config], seed: int,
                  protocols: Sequence[Protocol] = PROTOCOLS) -> Dict[str, float]:
    """Top-1 (%) of every protocol, by its key; ``configs`` maps each probe to its :func:`probe_config`."""
    return {p.key: PROBES[p.probe](configs[p.probe], getattr(train, p.feature), train.labels,
                                   getattr(val, p.feature), val.labels, num_classes, seed) for p in protocols}
