"""What a decoder is: the contract between ``SAIM`` and its neck.

The decoder turns the content stream (the encoder run in generation order) into one prediction per
predicted step. ``SAIM`` asks of it exactly what :class:`BaseDecoder` lists:

- ``num_layers`` (int): depth of the query stream; 0 means the decoder reads the content stream only
  (the output at step t predicts step t + 1), which ``SAIM`` allows with a fixed order only;
- ``patch_size`` (int): must equal the encoder's;
- ``context_indices(encoder_depth)``: which encoder outputs the decoder reads (checked when ``SAIM`` is
  built, so that a depth that does not fit is an error at once);
- ``num_predictions(num_patches)``: K, how many of the last steps of the order it predicts;
- ``forward(hidden_states, query_pos, encoder_layers=..., order=..., attn_mask=...)`` -> (B, K, D).

Before building it, ``SAIM`` fills in each of the constructor arguments ``embed_dims``, ``num_heads``,
``feedforward_channels``, ``patch_size``, ``context_dims``, ``grid`` and ``out_channels`` (the target's
``target_channels``) that the decoder's class accepts and the config leaves unset. See docs/extending.md.
"""
from abc import ABCMeta, abstractmethod
from typing import List, Optional, Sequence

from mmengine.model import BaseModule
from torch import Tensor, nn


class BaseDecoder(BaseModule, metaclass=ABCMeta):
    """Base class of the decoders (query stream and prediction head) of ``SAIM``.

    Subclasses set ``num_layers`` and ``patch_size`` and implement :meth:`context_indices` and
    :meth:`forward`; :meth:`num_predictions` defaults to every step.
    """
    num_layers: int
    patch_size: int

    @abstractmethod
    def context_indices(self, encoder_depth: int) -> List[int]:
        """0-based indices of the encoder outputs the decoder reads, for an encoder of ``encoder_depth`` blocks.

        Raises:
            ValueError: the decoder cannot read an encoder of this depth.
        """

    def num_predictions(self, num_patches: int) -> int:
        """K, the number of last steps of the order that are predicted: every step by default."""
        return num_patches

    @abstractmethod
    def forward(self,
                hidden_states: Sequence[Tensor],
                query_pos: Tensor,
                encoder_layers: Optional[Sequence[nn.Module]] = None,
                order: Optional[Tensor] = None,
                attn_mask: Optional[Tensor] = None) -> Tensor:
        """Predict the last K steps of the order.

        Args:
            hidden_states (Sequence[Tensor]): The content stream after each of the M encoder blocks, each
                (B, N+1, C_enc) over ``[cls, z_0, ..., z_{N-1}]``: output t+1 has seen the cls token and
                ``z_0..z_t``.
            query_pos (Tensor): The encoder's position embeddings in generation order, (B, N, C_enc).
            encoder_layers (Sequence[nn.Module], optional): The encoder blocks (for weight sharing).
            order (Tensor, optional): (B, N) generation order (raster patch indices).
            attn_mask (Tensor, optional): (N, N) bool query mask in generation order when segments are
                predicted together (True = step i may read content output j); None = the causal mask.

        Returns:
            Tensor: (B, K, D), D the target's ``target_channels``; row i predicts patch ``z_{N-K+i}``.
        """
