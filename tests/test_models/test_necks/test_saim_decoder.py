import pytest
import torch

import saim_mm  # noqa: F401
from saim_mm.models.necks import SAIMDecoder


def test_predictor_kinds_and_output_shape():
    mlp = SAIMDecoder(embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64, patch_size=4)
    assert [m.out_features for m in mlp.predictor if isinstance(m, torch.nn.Linear)] == [128, 48]
    lin = SAIMDecoder(embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64, patch_size=4,
                      predictor='linear')
    assert isinstance(lin.predictor, torch.nn.Linear) and lin.predictor.out_features == 48
    hidden = [torch.randn(3, 6, 32) for _ in range(4)]
    assert mlp(hidden, torch.randn(3, 5, 32)).shape == (3, 5, 48)


def test_shared_weights_own_no_blocks_and_need_the_encoder():
    dec = SAIMDecoder(embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64, patch_size=4,
                      share_encoder_weights=True)
    assert dec.layers is None
    assert not any(k.startswith('layers') for k in dec.state_dict())
    with pytest.raises(ValueError, match='needs encoder_layers'):
        dec([torch.randn(1, 5, 32)] * 2, torch.randn(1, 4, 32))


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="predictor must be one of \\('mlp', 'linear'\\)"):
        SAIMDecoder(predictor='conv')
    with pytest.raises(ValueError, match='num_layers must be a non-negative int'):
        SAIMDecoder(num_layers=-1)


def test_sizes_default_to_the_encoders_inside_saim_and_are_required_alone():
    from tests.conftest import build_tiny_saim, tiny_saim_cfg
    with pytest.raises(ValueError, match=r"SAIMDecoder needs \['embed_dims', 'num_heads', "
                                         r"'feedforward_channels', 'patch_size'\]"):
        SAIMDecoder(num_layers=2)
    cfg = tiny_saim_cfg(embed_dims=48, heads=3, patch=4)
    for key in ('embed_dims', 'num_heads', 'feedforward_channels', 'patch_size'):
        del cfg['neck'][key]
    import saim_mm  # noqa: F401
    from mmpretrain.registry import MODELS
    model = MODELS.build(cfg)
    layer = model.neck.layers[0]
    assert (model.neck.embed_dims, layer.attn.num_heads, layer.ffn.feedforward_channels, model.neck.patch_size) \
        == (48, 3, 96, 4)
    # the same weights' shapes as a decoder whose sizes are given (the model size is stated once)
    explicit = build_tiny_saim(embed_dims=48, heads=3, patch=4)
    assert {k: v.shape for k, v in model.state_dict().items()} == \
        {k: v.shape for k, v in explicit.state_dict().items()}
