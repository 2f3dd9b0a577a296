from collections import OrderedDict
from typing import Optional, Sequence

from mmengine.model import BaseModule, ModuleList
from mmpretrain.models.utils import build_norm_layer
from mmpretrain.registry import MODELS
from torch import Tensor, nn

from ..utils import SAIMTransformerLayer

PREDICTORS = ('mlp', 'linear')


@MODELS.register_module()
class SAIMDecoder(BaseModule):
    """SAIM query stream and prediction head.

    The query stream starts from the fixed position embedding of the patch to predict (no image content).
    Block ``j`` (1-based) cross-attends to the content stream after encoder block ``j * M / num_layers``:
    ``g <- g + Attn(Q=LN1(g), K=V=LN1(h))``, then ``g <- g + MLP(LN2(g))``. In generation order, the query
    for patch ``z_t`` sees ``[h_cls, h_{z_0}, ..., h_{z_{t-1}}]`` (never itself): a plain causal mask
    against the content stream shifted by one token. The head is ``pred = Predictor(LN(g))``.

    With ``num_layers=0`` (the ViT-iGPT baseline) there is no query stream: the content output at the cls
    token predicts ``z_0`` and the output at ``z_t`` predicts ``z_{t+1}``; only meaningful in raster order.

    Inside ``SAIM`` the width, heads, MLP width and patch size default to the encoder's (left as None, they
    are filled in from the backbone), so a config states the model size once.

    Args:
        embed_dims (int): Width C (that of the encoder). Required when built on its own.
        num_layers (int): Decoder depth Dq; must divide the encoder depth M. Defaults to 12.
        num_heads (int): Attention heads. Required when built on its own.
        feedforward_channels (int): Hidden width of the blocks' MLP. Required when built on its own.
        patch_size (int): Patch size p. Required when built on its own.
        in_channels (int): Image channels. Defaults to 3.
        share_encoder_weights (bool): Use encoder block ``j`` as decoder block ``j`` (the shared-weight
            ablation) instead of separate blocks. Defaults to False.
        predictor (str): ``'mlp'`` (C -> 4C -> p*p*3 with GELU) or ``'linear'``. Defaults to ``'mlp'``.
        with_cp (bool): Activation checkpointing in every block (training only). Defaults to False.
        norm_cfg (dict): Norm layer config. Defaults to LN with eps 1e-6.
        init_cfg (dict | list, optional): Initialisation config.
    """

    def __init__(self,
                 embed_dims: Optional[int] = None,
                 num_layers: int = 12,
                 num_heads: Optional[int] = None,
                 feedforward_channels: Optional[int] = None,
                 patch_size: Optional[int] = None,
                 in_channels: int = 3,
                 share_encoder_weights: bool = False,
                 predictor: str = 'mlp',
                 with_cp: bool = False,
                 norm_cfg: dict = dict(type='LN', eps=1e-6),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if not isinstance(num_layers, int) or num_layers < 0:
            raise ValueError(f'SAIMDecoder num_layers must be a non-negative int, got {num_layers!r}.')
        if predictor not in PREDICTORS:
            raise ValueError(f'SAIMDecoder predictor must be one of {PREDICTORS}, got {predictor!r}.')
        unset = [name for name, value in (('embed_dims', embed_dims), ('num_heads', num_heads),
                                          ('feedforward_channels', feedforward_channels),
                                          ('patch_size', patch_size)) if value is None]
        if unset:
            raise ValueError(f'SAIMDecoder needs {unset}: inside SAIM they default to the encoder\'s; '
                             'built on its own, give them.')
        self.num_layers = num_layers
        self.embed_dims = embed_dims
        self.patch_size = patch_size
        self.share_encoder_weights = share_encoder_weights
        if share_encoder_weights or num_layers == 0:
            self.layers = None
        else:
            self.layers = ModuleList(
                SAIMTransformerLayer(
                    embed_dims=embed_dims,
                    num_heads=num_heads,
                    feedforward_channels=feedforward_channels,
                    norm_cfg=norm_cfg,
                    with_cp=with_cp) for _ in range(num_layers))
        self.ln = build_norm_layer(norm_cfg, embed_dims)
        out_dims = patch_size**2 * in_channels
        if predictor == 'mlp':
            self.predictor = nn.Sequential(
                OrderedDict(
                    fc1=nn.Linear(embed_dims, 4 * embed_dims),
                    act=nn.GELU(),
                    fc2=nn.Linear(4 * embed_dims, out_dims)))
        else:
            self.predictor = nn.Linear(embed_dims, out_dims)

    def predict(self, x: Tensor) -> Tensor:
        """Prediction head: (B, N, C) -> (B, N, p*p*3)."""
        return self.predictor(self.ln(x))

    def forward(self,
                hidden_states: Sequence[Tensor],
                query_pos: Tensor,
                encoder_layers: Optional[Sequence[nn.Module]] = None) -> Tensor:
        """Predict every patch in generation order.

        Args:
            hidden_states (Sequence[Tensor]): The content stream after each of the M encoder blocks, each
                (B, N+1, C) over ``[cls, z_0, ..., z_{N-1}]``.
            query_pos (Tensor): (B, N) position embeddings in generation order, shape (B, N, C).
            encoder_layers (Sequence[nn.Module], optional): The encoder blocks; required with
                ``share_encoder_weights``.

        Returns:
            Tensor: (B, N, p*p*3); row t predicts patch ``z_t``.
        """
        if self.num_layers == 0:
            return self.predict(hidden_states[-1][:, :-1])
        if self.share_encoder_weights:
            if encoder_layers is None:
                raise ValueError('SAIMDecoder with share_encoder_weights=True needs encoder_layers.')
            layers = encoder_layers[:self.num_layers]
        else:
            layers = self.layers
        step = len(hidden_states) // self.num_layers
        g = query_pos
        for j, layer in enumerate(layers):
            # Keys [h_cls, h_{z_0}, ..., h_{z_{N-2}}]: query t sees cls and z_0..z_{t-1}.
            g = layer(g, context=hidden_states[(j + 1) * step - 1][:, :-1], causal=True)
        return self.predict(g)
