"""``compile=True`` (mmengine compiles ``model.train_step`` with ``torch.compile``) for SAIM pre-training: the
compiled loss and gradients equal eager ones, and the Runner trains with it."""
import pytest
import torch
from mmengine.runner import Runner

import saim_mm  # noqa: F401
from tests.conftest import build_tiny_saim, demo_train_cfg

B, IMG, PATCH = 2, 16, 4


def test_compiled_loss_and_gradients_equal_eager():
    torch._dynamo.reset()
    model = build_tiny_saim(img_size=IMG, patch=PATCH).train()
    gen = torch.Generator().manual_seed(0)
    images = torch.randn(B, 3, IMG, IMG, generator=gen)
    order = torch.stack([torch.randperm((IMG // PATCH)**2, generator=gen) for _ in range(B)])

    def loss_and_grads(fn):
        model.zero_grad(set_to_none=True)
        loss = fn(images, order=order)['loss']
        loss.backward()
        return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    eager, eager_grads = loss_and_grads(model.loss)
    compiled, compiled_grads = loss_and_grads(torch.compile(model.loss))
    assert abs(compiled - eager) <= 1e-5 * abs(eager)
    assert compiled_grads.keys() == eager_grads.keys()
    for name, g in eager_grads.items():
        torch.testing.assert_close(compiled_grads[name], g, rtol=1e-4, atol=1e-6, msg=name)


def train_compiled(demo_data, work_dir: str, **options) -> Runner:
    """1 iteration of the CPU demo with ``compile`` set. The ``eager`` backend runs dynamo over the whole
    ``train_step`` (the optimiser step included) as inductor does, without the two minutes of inductor's
    code generation on 2 cores (measured with inductor: the same run passes in 126 s)."""
    torch._dynamo.reset()
    cfg = demo_train_cfg(demo_data, work_dir, epochs=1, batch=32, **options)
    cfg.compile = dict(backend='eager')
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner


def test_runner_trains_with_compile(demo_data, tmp_path):
    runner = train_compiled(demo_data, str(tmp_path))
    assert hasattr(runner.model.train_step, '_torchdynamo_orig_callable')  # the Runner compiled it
    losses = runner.message_hub.get_scalar('train/loss').data[0]
    assert len(losses) == 1 and all(torch.isfinite(torch.tensor(losses)))


def test_without_plain_param_groups_the_compiled_step_fails(demo_data, tmp_path):
    """The control: mmengine's ConfigDict parameter groups break dynamo (what PlainParamGroupsHook fixes)."""
    hooks = [h for h in demo_train_cfg(demo_data, str(tmp_path)).custom_hooks if h.type != 'PlainParamGroupsHook']
    with pytest.raises(torch._dynamo.exc.InternalTorchDynamoError, match='UserDefinedDictVariable'):
        train_compiled(demo_data, str(tmp_path), custom_hooks=hooks)
