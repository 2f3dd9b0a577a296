from typing import List, Optional, Sequence

from mmcv.cnn.bricks.transformer import FFN
from mmengine.model import BaseModule, ModuleList
from mmpretrain.models.utils import build_norm_layer
from mmpretrain.registry import MODELS
from torch import Tensor, nn

from .base_decoder import BaseDecoder


class ResidualMLPBlock(BaseModule):
    """``x <- x + MLP(LN(x))``: a pre-norm transformer block without attention (MLP: Linear, GELU, Linear).

    Args:
        embed_dims (int): Width C of the tokens.
        feedforward_channels (int): Hidden width of the MLP.
        norm_cfg (dict): Norm layer config.
    """

    def __init__(self, embed_dims: int, feedforward_channels: int, norm_cfg: dict) -> None:
        super().__init__()
        self.ln = build_norm_layer(norm_cfg, embed_dims)
        self.ffn = FFN(embed_dims, feedforward_channels, act_cfg=dict(type='GELU'))

    def forward(self, x: Tensor) -> Tensor:
        """(B, K, C) -> (B, K, C)."""
        return self.ffn(self.ln(x), identity=x)


@MODELS.register_module()
class MLPPredictionNeck(BaseDecoder):
    """AIM's prediction head (El-Nouby et al., 2024): a deep MLP on the content stream, no query stream.

    A :class:`BaseDecoder` with ``num_layers = 0``: the encoder output after step t (the cls token for
    t = -1) predicts step t + 1, so ``SAIM`` allows it with a fixed order only. Every output is mapped
    independently::

        x = fc_in(LN_in(h_t))                    # (B, K, hidden_dims)
        x = x + MLP_i(LN_i(x)),  i = 1..num_blocks  # MLP_i: Linear, GELU, Linear (mlp_ratio * hidden_dims wide)
        pred = fc_out(LN_out(x))                 # (B, K, out_channels)

    Inside ``SAIM`` the encoder width (``embed_dims``), the patch size and the target width
    (``out_channels``, the head's ``target_channels``) are filled in; built on its own, give them.

    Args:
        embed_dims (int): Width of the encoder output it reads.
        patch_size (int): Patch size p (the encoder's).
        out_channels (int): Prediction width D (the target's).
        num_blocks (int): Residual MLP blocks (AIM-600M: 12). Defaults to 12.
        hidden_dims (int): Width of the blocks (AIM-600M: 2048). Defaults to 2048.
        mlp_ratio (float): Hidden width of each block's MLP as a multiple of ``hidden_dims``. Defaults to 4.
        num_predict (int, optional): K, only the last K steps of the order are predicted; None = all.
        norm_cfg (dict): Norm layer config. Defaults to LN with eps 1e-6.
        init_cfg (dict | list, optional): Initialisation config.
    """
    num_layers = 0

    def __init__(self,
                 embed_dims: Optional[int] = None,
                 patch_size: Optional[int] = None,
                 out_channels: Optional[int] = None,
                 num_blocks: int = 12,
                 hidden_dims: int = 2048,
                 mlp_ratio: float = 4.,
                 num_predict: Optional[int] = None,
                 norm_cfg: dict = dict(type='LN', eps=1e-6),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        unset = [name for name, value in (('embed_dims', embed_dims), ('patch_size', patch_size),
                                          ('out_channels', out_channels)) if value is None]
        if unset:
            raise ValueError(f'MLPPredictionNeck needs {unset}: inside SAIM they default to the encoder\'s and '
                             'the target\'s; built on its own, give them.')
        for key, value in (('embed_dims', embed_dims), ('patch_size', patch_size), ('out_channels', out_channels),
                           ('hidden_dims', hidden_dims)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f'MLPPredictionNeck {key} must be a positive int, got {value!r}.')
        if not isinstance(num_blocks, int) or isinstance(num_blocks, bool) or num_blocks < 0:
            raise ValueError(f'MLPPredictionNeck num_blocks must be a non-negative int, got {num_blocks!r}.')
        if not isinstance(mlp_ratio, (int, float)) or int(mlp_ratio * hidden_dims) < 1:
            raise ValueError(f'MLPPredictionNeck mlp_ratio must be a positive number (at least one hidden unit '
                             f'with hidden_dims={hidden_dims}), got {mlp_ratio!r}.')
        if num_predict is not None and not (isinstance(num_predict, int) and num_predict > 0):
            raise ValueError(f'MLPPredictionNeck num_predict must be a positive int, got {num_predict!r}.')
        self.embed_dims, self.patch_size, self.out_channels = embed_dims, patch_size, out_channels
        self.num_blocks, self.hidden_dims, self.num_predict = num_blocks, hidden_dims, num_predict
        self.feedforward_channels = int(mlp_ratio * hidden_dims)
        self.ln_in = build_norm_layer(norm_cfg, embed_dims)
        self.fc_in = nn.Linear(embed_dims, hidden_dims)
        self.blocks = ModuleList(
            ResidualMLPBlock(hidden_dims, self.feedforward_channels, norm_cfg) for _ in range(num_blocks))
        self.ln_out = build_norm_layer(norm_cfg, hidden_dims)
        self.fc_out = nn.Linear(hidden_dims, out_channels)

    def context_indices(self, encoder_depth: int) -> List[int]:
        """The last encoder output only."""
        return [encoder_depth - 1]

    def num_predictions(self, num_patches: int) -> int:
        """K, the number of last steps of the order that are predicted (N without ``num_predict``).

        Raises:
            ValueError: ``num_predict`` exceeds ``num_patches``.
        """
        if self.num_predict is None:
            return num_patches
        if self.num_predict > num_patches:
            raise ValueError(f'neck.num_predict={self.num_predict} exceeds the {num_patches} patches.')
        return self.num_predict

    def predict(self, x: Tensor) -> Tensor:
        """The MLP head: (B, K, embed_dims) -> (B, K, out_channels)."""
        x = self.fc_in(self.ln_in(x))
        for block in self.blocks:
            x = block(x)
        return self.fc_out(self.ln_out(x))

    def forward(self, hidden_states: Sequence[Tensor], query_pos: Tensor,
                encoder_layers: Optional[Sequence[nn.Module]] = None, order: Optional[Tensor] = None,
                attn_mask: Optional[Tensor] = None) -> Tensor:
        """Predict the last K steps of the order from the last encoder output.

        Args:
            hidden_states (Sequence[Tensor]): The content stream after each encoder block, each
                (B, N+1, embed_dims) over ``[cls, z_0, ..., z_{N-1}]``; the last one is read.
            query_pos (Tensor): (B, N, embed_dims) position embeddings in generation order (only N is read).
            encoder_layers (Sequence[nn.Module], optional): Unused.
            order (Tensor, optional): Unused.
            attn_mask (Tensor, optional): Unused (no query stream).

        Returns:
            Tensor: (B, K, out_channels); row i (read from the output at ``z_{N-K+i-1}``) predicts
            ``z_{N-K+i}``.
        """
        N = query_pos.shape[1]
        K = self.num_predictions(N)
        # [h_cls, h_{z_0}, ..., h_{z_{N-2}}] predict z_0..z_{N-1}; the last K of them
        return self.predict(hidden_states[-1][:, :-1][:, N - K:])
