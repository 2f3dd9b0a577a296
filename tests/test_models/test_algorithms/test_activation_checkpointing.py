"""Activation checkpointing of both streams (``with_cp=True`` on ``SAIMViT`` and ``SAIMDecoder``, as in the
ViT-L/H configs) changes what is kept for the backward pass, not what is computed: the loss and every
gradient of a whole SAIM equal those without it, in float64."""
import pytest
import torch
from mmpretrain.registry import MODELS

import saim_mm  # noqa: F401
from saim_mm.models.utils import SAIMTransformerLayer
from tests.conftest import tiny_saim_cfg

B, IMG, PATCH = 3, 16, 4


def build(with_cp: bool, drop_path: float, shared: bool) -> torch.nn.Module:
    cfg = tiny_saim_cfg(img_size=IMG, patch=PATCH, shared=shared)
    cfg['backbone'].update(with_cp=with_cp, drop_path_rate=drop_path)
    cfg['neck'].update(with_cp=with_cp)
    torch.manual_seed(0)
    model = MODELS.build({**cfg, 'data_preprocessor': dict(type='mmengine.BaseDataPreprocessor')})
    model.init_weights()
    return model.double().train()


def loss_and_grads(model, images, order, seed: int = 1):
    """Loss, gradients, and how often each block ran (once per step, or twice with recomputation)."""
    runs = {}
    handles = [m.ffn.register_forward_pre_hook(lambda *_, name=name: runs.__setitem__(name, runs.get(name, 0) + 1))
               for name, m in model.named_modules() if isinstance(m, SAIMTransformerLayer)]
    torch.manual_seed(seed)  # the drop-path draws
    loss = model.loss(images, order=order)['loss']
    loss.backward()
    for h in handles:
        h.remove()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    return loss.detach(), grads, runs


@pytest.mark.parametrize('drop_path,shared', [(0.0, False), (0.2, False), (0.0, True)])
def test_checkpointing_keeps_loss_and_every_gradient(drop_path, shared):
    plain, ckpt = build(False, drop_path, shared), build(True, drop_path, shared)
    ckpt.load_state_dict(plain.state_dict())
    gen = torch.Generator().manual_seed(0)
    images = torch.randn(B, 3, IMG, IMG, generator=gen, dtype=torch.float64)
    order = torch.stack([torch.randperm((IMG // PATCH)**2, generator=gen) for _ in range(B)])
    loss0, grads0, runs0 = loss_and_grads(plain, images, order)
    loss1, grads1, runs1 = loss_and_grads(ckpt, images, order)
    # the switch reaches every block of both streams: each one is recomputed in the backward pass
    # (with shared weights the decoder runs the encoder's blocks, which checkpoint as the encoder's)
    n_blocks = len(runs0)
    assert n_blocks == (4 if shared else 8)
    assert all(runs1[name] == 2 * runs0[name] for name in runs0), (runs0, runs1)
    assert abs(loss1 - loss0) <= 1e-10 * abs(loss0)
    assert grads0.keys() == grads1.keys() and len(grads0) > 50
    for name, g in grads0.items():
        scale = g.abs().max().clamp_min(1e-30)
        assert (grads1[name] - g).abs().max() <= 1e-10 * scale, name
    if drop_path:  # the drop-path masks are drawn again in the recomputation and must be the same
        assert not torch.allclose(loss0, build(False, 0.0, shared).loss(images, order=order)['loss'].detach())

