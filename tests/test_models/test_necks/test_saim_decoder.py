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
