"""MLPPredictionNeck: AIM's residual-MLP prediction head on the content stream (no query stream)."""
import pytest
import torch
from mmpretrain.registry import MODELS

import saim_mm  # noqa: F401
from saim_mm.models.necks import MLPPredictionNeck
from tests.conftest import tiny_saim_cfg

C, P, OUT, N = 16, 4, 48, 16  # encoder width, patch size, target width (4 x 4 x 3 pixels), patches (4 x 4 grid)


def written_out_head(neck: MLPPredictionNeck, h: torch.Tensor) -> torch.Tensor:
    """fc_out(LN(x_M)), x_i = x_{i-1} + W2 GELU(W1 LN_i(x_{i-1}) + b1) + b2, x_0 = fc_in(LN(h)), in float64."""

    def ln(x, norm):
        mean = x.mean(-1, keepdim=True)
        var = ((x - mean)**2).mean(-1, keepdim=True)
        return (x - mean) / torch.sqrt(var + norm.eps) * norm.weight.double() + norm.bias.double()

    def linear(x, fc):
        return x @ fc.weight.double().T + fc.bias.double()

    def gelu(x):
        return 0.5 * x * (1 + torch.erf(x / 2**0.5))

    x = linear(ln(h.double(), neck.ln_in), neck.fc_in)
    for block in neck.blocks:
        fc1, fc2 = block.ffn.layers[0][0], block.ffn.layers[1]
        x = x + linear(gelu(linear(ln(x, block.ln), fc1)), fc2)
    return linear(ln(x, neck.ln_out), neck.fc_out)


def randomised_neck(**kwargs) -> MLPPredictionNeck:
    torch.manual_seed(0)
    neck = MLPPredictionNeck(**{'embed_dims': C, 'patch_size': P, 'out_channels': OUT, 'num_blocks': 3,
                                'hidden_dims': 24, 'mlp_ratio': 2, **kwargs})
    for m in neck.modules():  # non-trivial norms
        if isinstance(m, torch.nn.LayerNorm):
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.normal_()
    return neck


def test_output_equals_the_written_out_head_one_step_ahead():
    neck = randomised_neck()
    hidden = [torch.randn(2, N + 1, C) for _ in range(3)]  # [cls, z_0..z_{N-1}] after each of 3 blocks
    pred = neck(hidden, torch.randn(2, N, C))
    assert pred.shape == (2, N, OUT)
    # row t reads the last block's output at [cls, z_0, ..., z_{N-2}][t], i.e. after step t-1
    expected = torch.stack([written_out_head(neck, hidden[-1][:, t]) for t in range(N)], dim=1)
    assert torch.allclose(pred.double(), expected, atol=1e-5, rtol=1e-5)
    assert torch.allclose(neck.double()([h.double() for h in hidden], torch.zeros(2, N, C, dtype=torch.float64)),
                          expected, atol=1e-12, rtol=1e-12)


def test_sizes_and_blocks():
    neck = MLPPredictionNeck(embed_dims=C, patch_size=P, out_channels=OUT, num_blocks=2, hidden_dims=32,
                             mlp_ratio=4)
    assert neck.num_layers == 0 and neck.context_indices(5) == [4]
    assert (neck.fc_in.in_features, neck.fc_in.out_features, neck.fc_out.out_features) == (C, 32, OUT)
    assert [(b.ffn.layers[0][0].out_features, b.ffn.layers[1].out_features) for b in neck.blocks] == [(128, 32)] * 2
    assert len(MLPPredictionNeck(embed_dims=C, patch_size=P, out_channels=OUT, num_blocks=0).blocks) == 0


def test_partial_prediction_is_the_last_k_rows():
    full, partial = randomised_neck(), randomised_neck(num_predict=5)
    hidden = [torch.randn(2, N + 1, C)]
    assert partial.num_predictions(N) == 5 and full.num_predictions(N) == N
    assert torch.equal(partial(hidden, torch.zeros(2, N, C)), full(hidden, torch.zeros(2, N, C))[:, -5:])
    with pytest.raises(ValueError, match='neck.num_predict=17 exceeds the 16 patches'):
        randomised_neck(num_predict=17).num_predictions(N)


@pytest.mark.parametrize('kwargs,message', [
    (dict(embed_dims=None, out_channels=None), r"MLPPredictionNeck needs \['embed_dims', 'out_channels'\]"),
    (dict(hidden_dims=0), 'hidden_dims must be a positive int, got 0'),
    (dict(out_channels=4.5), 'out_channels must be a positive int, got 4.5'),
    (dict(num_blocks=-1), 'num_blocks must be a non-negative int, got -1'),
    (dict(mlp_ratio=0), 'mlp_ratio must be a positive number .* got 0'),
    (dict(mlp_ratio='4'), "mlp_ratio must be a positive number .* got '4'"),
    (dict(num_predict=0), 'num_predict must be a positive int, got 0'),
])
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MLPPredictionNeck(**{'embed_dims': C, 'patch_size': P, 'out_channels': OUT, **kwargs})


def saim_cfg(order: str = 'raster', **neck) -> dict:
    cfg = tiny_saim_cfg(depth=2, embed_dims=C, heads=2, patch=P, order=order)
    cfg['neck'] = dict(type='MLPPredictionNeck', num_blocks=2, hidden_dims=32, **neck)  # sizes filled in by SAIM
    return cfg


def test_saim_fills_in_the_sizes_and_trains_every_parameter():
    torch.manual_seed(0)
    model = MODELS.build(saim_cfg())
    model.init_weights()
    neck = model.neck
    assert (neck.embed_dims, neck.patch_size, neck.out_channels) == (C, P, model.head.target_channels) == (C, P, OUT)
    loss = model.loss(torch.randn(2, 3, 16, 16))['loss']
    assert torch.isfinite(loss)
    loss.backward()
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    assert any(n.startswith('neck.blocks.1.') for n, _ in trainable)
    no_grad = [n for n, p in trainable if p.grad is None or not p.grad.abs().sum() > 0]
    assert not no_grad, f'no gradient reaches {no_grad}'


def test_saim_predicts_the_last_k_steps_of_the_order():
    torch.manual_seed(0)
    model = MODELS.build(saim_cfg(num_predict=6))
    images = torch.randn(2, 3, 16, 16)
    order = model.sample_order(2, 'cpu')
    assert model.num_predictions == 6
    pred = model.predict_patches(images, order)
    hidden, _ = model.backbone(images, order=order)
    assert torch.equal(pred, model.neck.predict(hidden[-1][:, N - 6:N]))  # outputs after z_9..z_14
    expected = model.head.loss(pred, images, order[:, N - 6:])
    assert torch.equal(model.loss(images, order=order)['loss'], expected)
    with pytest.raises(ValueError, match='neck.num_predict=17 exceeds the 16 patches'):
        MODELS.build(saim_cfg(num_predict=17))


def test_saim_refuses_it_with_a_per_sample_order():
    with pytest.raises(ValueError, match=r'neck.num_layers=0 \(no query stream\) needs a fixed order'):
        MODELS.build(saim_cfg(order='stochastic'))
