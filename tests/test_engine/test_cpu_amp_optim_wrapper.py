"""bf16 autocast on the CPU (``CPUAmpOptimWrapper``): the SAIM loss stays within 1e-2 of fp32 for the same
weights and order, the matrix products really run in bf16, and a train step updates the fp32 weights."""
import pytest
import torch
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope
from mmpretrain.registry import MODELS

import saim_mm  # noqa: F401
from saim_mm.engine import CPUAmpOptimWrapper
from tests.conftest import tiny_saim_cfg

IMG, PATCH, B = 16, 4, 4


def tiny_model():
    torch.manual_seed(0)
    model = MODELS.build(tiny_saim_cfg(img_size=IMG, patch=PATCH))
    model.init_weights()
    return model.train()


def wrapper_for(model):
    with DefaultScope.overwrite_default_scope('mmpretrain'):  # the configs' default scope
        return build_optim_wrapper(model, dict(type='CPUAmpOptimWrapper', dtype='bfloat16',
                                               optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.95))))


def test_bf16_loss_is_within_1e_2_of_fp32():
    model = tiny_model()
    wrapper = wrapper_for(model)
    assert isinstance(wrapper, CPUAmpOptimWrapper)
    gen = torch.Generator().manual_seed(0)
    images = torch.randn(B, 3, IMG, IMG, generator=gen)
    order = torch.stack([torch.randperm((IMG // PATCH)**2, generator=gen) for _ in range(B)])
    dtypes = []
    hook = model.backbone.layers[0].attn.qkv.register_forward_hook(lambda m, i, o: dtypes.append(o.dtype))
    with torch.no_grad():
        fp32 = model.loss(images, order=order)['loss']
        with wrapper.optim_context(model):
            bf16 = model.loss(images, order=order)['loss']
    hook.remove()
    assert dtypes == [torch.float32, torch.bfloat16]
    rel = (bf16.float() - fp32).abs() / fp32.abs()
    assert 0 < rel <= 1e-2, rel  # not the same computation, but close


def test_train_step_in_bf16_updates_fp32_weights():
    model = tiny_model()
    wrapper = wrapper_for(model)
    before = model.neck.ln.weight.detach().clone()
    data = dict(inputs=torch.randint(0, 256, (B, 3, IMG, IMG), dtype=torch.uint8), data_samples=None)
    log = model.train_step(data, wrapper)
    assert torch.isfinite(log['loss'])
    assert model.neck.ln.weight.dtype == torch.float32
    assert not torch.equal(model.neck.ln.weight, before)


def test_fp16_is_refused_with_the_reason():
    with pytest.raises(ValueError, match="dtype must be 'bfloat16'.*loss scaler"):
        CPUAmpOptimWrapper(dtype='float16', optimizer=torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1))
