from collections import OrderedDict
from typing import List, Optional, Sequence

from mmengine.model import ModuleList
from mmpretrain.models.utils import build_2d_sincos_position_embedding, build_norm_layer
from mmpretrain.registry import MODELS
from torch import Tensor, nn

from ..utils import SAIMTransformerLayer, gather_tokens
from .base_decoder import BaseDecoder

PREDICTORS = ('mlp', 'linear')


@MODELS.register_module()
class SAIMDecoder(BaseDecoder):
    """SAIM query stream and prediction head (a :class:`BaseDecoder`).

    The query stream starts from the fixed position embedding of the patch to predict (no image content).
    Block ``j`` (1-based) cross-attends to the content stream after encoder block ``j * M / num_layers``:
    ``g <- g + Attn(Q=LN1(g), K=V=LN1(h))``, then ``g <- g + MLP(LN2(g))``. In generation order, the query
    for patch ``z_t`` sees ``[h_cls, h_{z_0}, ..., h_{z_{t-1}}]`` (never itself): a plain causal mask
    against the content stream shifted by one token. The head is ``pred = Predictor(LN(g))``.

    With ``num_layers=0`` (the ViT-iGPT baseline) there is no query stream: the content output at the cls
    token predicts ``z_0`` and the output at ``z_t`` predicts ``z_{t+1}``; only meaningful with a fixed order.

    Inside ``SAIM`` the width, heads, MLP width, patch size, encoder width, patch grid and output width
    default to the encoder's and the target's (left as None, they are filled in), so a config states the
    model size once. Beyond the paper, all off by default:

    - partial prediction (``num_predict`` K or ``predict_ratio``): only the last K steps of the order are
      queried (against the whole content stream before them) and predicted;
    - a narrow decoder (``embed_dims`` below the encoder's ``context_dims``): the content stream each block
      reads is projected to the decoder width (``context_embeds.j``, one Linear per block), and the
      queries start from a fixed 2-D sin-cos table of the decoder width;
    - ``context_layers``: which encoder blocks the decoder blocks read, for a depth that does not divide M.

    Args:
        embed_dims (int): Decoder width. Required when built on its own.
        num_layers (int): Decoder depth Dq; must divide the encoder depth M unless ``context_layers`` is
            given. Defaults to 12.
        num_heads (int): Attention heads. Required when built on its own.
        feedforward_channels (int): Hidden width of the blocks' MLP. Required when built on its own.
        patch_size (int): Patch size p. Required when built on its own.
        in_channels (int): Image channels. Defaults to 3.
        share_encoder_weights (bool): Use encoder block ``j`` as decoder block ``j`` (the shared-weight
            ablation) instead of separate blocks. Defaults to False.
        predictor (str): ``'mlp'`` (C -> 4C -> out with GELU) or ``'linear'``. Defaults to ``'mlp'``.
        with_cp (bool): Activation checkpointing in every block (training only). Defaults to False.
        context_dims (int, optional): Encoder width; None = ``embed_dims`` (no projection).
        grid (tuple[int, int], optional): Patch grid; needed by a narrow decoder's query table.
        context_layers (Sequence[int], optional): 1-based encoder block read by each decoder block
            (increasing); None = every ``M / num_layers``-th.
        num_predict (int, optional): K, the number of last steps predicted; None = all.
        predict_ratio (float, optional): K as a fraction of N (``round(ratio * N)``, at least 1).
        out_channels (int, optional): Prediction width; None = ``p * p * in_channels`` (pixels).
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
                 context_dims: Optional[int] = None,
                 grid: Optional[Sequence[int]] = None,
                 context_layers: Optional[Sequence[int]] = None,
                 num_predict: Optional[int] = None,
                 predict_ratio: Optional[float] = None,
                 out_channels: Optional[int] = None,
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
        if embed_dims % num_heads:
            raise ValueError(f'SAIMDecoder num_heads={num_heads} does not divide embed_dims={embed_dims}.')
        if num_predict is not None and predict_ratio is not None:
            raise ValueError('SAIMDecoder takes num_predict or predict_ratio, not both.')
        if num_predict is not None and not (isinstance(num_predict, int) and num_predict > 0):
            raise ValueError(f'SAIMDecoder num_predict must be a positive int, got {num_predict!r}.')
        if predict_ratio is not None and not 0 < predict_ratio <= 1:
            raise ValueError(f'SAIMDecoder predict_ratio must be in (0, 1], got {predict_ratio!r}.')
        self.num_layers = num_layers
        self.embed_dims = embed_dims
        self.patch_size = patch_size
        self.share_encoder_weights = share_encoder_weights
        self.context_dims = context_dims or embed_dims
        self.context_layers = None if context_layers is None else [int(i) for i in context_layers]
        self.num_predict = num_predict
        self.predict_ratio = predict_ratio
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
        self.out_channels = out_channels or patch_size**2 * in_channels
        if predictor == 'mlp':
            self.predictor = nn.Sequential(
                OrderedDict(
                    fc1=nn.Linear(embed_dims, 4 * embed_dims),
                    act=nn.GELU(),
                    fc2=nn.Linear(4 * embed_dims, self.out_channels)))
        else:
            self.predictor = nn.Linear(embed_dims, self.out_channels)
        self.context_embeds = None
        if self.narrow:
            if share_encoder_weights or num_layers == 0:
                raise ValueError(f'SAIMDecoder embed_dims={embed_dims} differs from the encoder width '
                                 f'{self.context_dims}: a narrow decoder needs blocks of its own (num_layers > 0, '
                                 'share_encoder_weights=False).')
            if grid is None:
                raise ValueError('a narrow SAIMDecoder needs the patch grid (grid=(h, w); SAIM fills it in).')
            self.context_embeds = ModuleList(nn.Linear(self.context_dims, embed_dims) for _ in range(num_layers))
            self.register_buffer('query_pos', build_2d_sincos_position_embedding(
                tuple(grid), embed_dims, cls_token=False), persistent=False)  # (1, N, C_dec), fixed

    @property
    def narrow(self) -> bool:
        """True when the decoder is narrower (or wider) than the encoder and projects what it reads."""
        return self.context_dims != self.embed_dims

    def context_indices(self, encoder_depth: int) -> List[int]:
        """0-based indices of the encoder outputs that decoder blocks 1..Dq read.

        Raises:
            ValueError: the depth does not divide ``encoder_depth`` (and no ``context_layers`` is given), or
                ``context_layers`` is not an increasing list of ``num_layers`` blocks in 1..M.
        """
        M, Dq = encoder_depth, self.num_layers
        if self.context_layers is None:
            if Dq and M % Dq:
                raise ValueError(f'neck.num_layers={Dq} must divide the encoder depth {M}; allowed: '
                                 f'{[d for d in range(1, M + 1) if M % d == 0]} (or give neck.context_layers).')
            return [(j + 1) * (M // Dq) - 1 for j in range(Dq)]
        layers = self.context_layers
        if len(layers) != Dq or any(b <= a for a, b in zip(layers, layers[1:])) or not all(
                1 <= i <= M for i in layers):
            raise ValueError(f'neck.context_layers={layers} must list {Dq} increasing encoder blocks in 1..{M}.')
        return [i - 1 for i in layers]

    def num_predictions(self, num_patches: int) -> int:
        """K, the number of last steps of the order that are predicted (N without partial prediction)."""
        if self.num_predict is not None:
            if self.num_predict > num_patches:
                raise ValueError(f'neck.num_predict={self.num_predict} exceeds the {num_patches} patches.')
            return self.num_predict
        if self.predict_ratio is not None:
            return max(1, round(self.predict_ratio * num_patches))
        return num_patches

    def predict(self, x: Tensor) -> Tensor:
        """Prediction head: (B, K, C) -> (B, K, out_channels)."""
        return self.predictor(self.ln(x))

    def forward(self, hidden_states: Sequence[Tensor], query_pos: Tensor,
                encoder_layers: Optional[Sequence[nn.Module]] = None, order: Optional[Tensor] = None,
                attn_mask: Optional[Tensor] = None) -> Tensor:
        """Predict the last K steps of the order (every step without partial prediction).

        Args:
            hidden_states (Sequence[Tensor]): The content stream after each of the M encoder blocks, each
                (B, N+1, C_enc) over ``[cls, z_0, ..., z_{N-1}]``.
            query_pos (Tensor): The encoder's position embeddings in generation order, (B, N, C_enc).
            encoder_layers (Sequence[nn.Module], optional): The encoder blocks; required with
                ``share_encoder_weights``.
            order (Tensor, optional): (B, N) generation order; required by a narrow decoder.
            attn_mask (Tensor, optional): (N, N) bool query mask in generation order (block-causal
                segments); None = the causal mask.

        Returns:
            Tensor: (B, K, out_channels); row i predicts patch ``z_{N-K+i}``.
        """
        N = query_pos.shape[1]
        K = self.num_predictions(N)
        if self.num_layers == 0:
            return self.predict(hidden_states[-1][:, :-1][:, N - K:])
        if self.share_encoder_weights:
            if encoder_layers is None:
                raise ValueError('SAIMDecoder with share_encoder_weights=True needs encoder_layers.')
            layers = encoder_layers[:self.num_layers]
        else:
            layers = self.layers
        if self.narrow:
            if order is None:
                raise ValueError('a narrow SAIMDecoder needs the generation order.')
            query_pos = gather_tokens(self.query_pos, order)
        g = query_pos[:, N - K:]
        mask = None if attn_mask is None else attn_mask[N - K:]
        for j, (layer, index) in enumerate(zip(layers, self.context_indices(len(hidden_states)))):
            # Keys [h_cls, h_{z_0}, ..., h_{z_{N-2}}]: query t sees cls and z_0..z_{t-1}.
            context = hidden_states[index][:, :-1]
            if self.context_embeds is not None:
                context = self.context_embeds[j](context)
            g = layer(g, context=context, attn_mask=mask, is_causal=mask is None)
        return self.predict(g)

