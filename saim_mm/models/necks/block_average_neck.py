from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS
from torch import Tensor


@MODELS.register_module()
class BlockAverageNeck(BaseModule):
    """Classifier neck: the average of the outputs of several backbone blocks (AIM's layer-averaged probe).

    The backbone (mmpretrain ``VisionTransformer`` or ``SAIMViT`` with ``out_indices=[...]``) returns one
    output per listed block, all of one shape; the neck returns their element-wise mean, of that shape, as a
    one-element tuple (what mmpretrain heads take). With ``out_type='raw'`` each output is (B, 1+N, C) and so
    is the average, for ``AttentiveProbeHead(num_extra_tokens=1)``; (B, C) cls tokens and (B, C, H, W)
    feature maps average the same way. (mmpretrain 1.2.0's necks pool within one output, e.g.
    ``GlobalAveragePooling``, or fuse multi-scale maps, ``HRFuseScales``; none averages several blocks.)

    AIM's attentive probe averages the raw outputs of its last 6 blocks (the trunk's final norm is not applied
    to them) and normalises afterwards, in the probe (a BatchNorm without affine parameters). That is the
    default here, so with it the backbone is built with ``final_norm=False`` (otherwise the last block's
    output alone would be normalised). ``normalize=True`` instead standardises each output over its channels
    first (a LayerNorm without affine parameters, so the neck stays parameter-free), giving every block the
    same weight whatever the scale of its residual stream.

    Args:
        num_inputs (int, optional): The number of block outputs expected (``len(out_indices)``); checked
            when given. Defaults to None.
        normalize (bool): Standardise each output over its channels before averaging. Defaults to False.
        eps (float): Epsilon of the standardisation. Defaults to 1e-6.
        init_cfg (dict | list, optional): Initialisation config (the neck has no parameters).
    """

    def __init__(self,
                 num_inputs: Optional[int] = None,
                 normalize: bool = False,
                 eps: float = 1e-6,
                 init_cfg: Optional[Union[dict, list]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if num_inputs is not None and not (isinstance(num_inputs, int) and num_inputs > 0):
            raise ValueError(f'BlockAverageNeck num_inputs must be a positive int (len(backbone.out_indices)), '
                             f'got {num_inputs!r}.')
        if not isinstance(normalize, bool):
            raise ValueError(f'BlockAverageNeck normalize must be True or False, got {normalize!r}.')
        self.num_inputs, self.normalize, self.eps = num_inputs, normalize, eps

    def forward(self, inputs: Union[Tensor, Sequence[Tensor]]) -> Tuple[Tensor]:
        """Average the block outputs.

        Args:
            inputs (Sequence[Tensor]): The backbone's outputs, all of one shape: (B, 1+N, C) tokens,
                (B, C) cls tokens or (B, C, H, W) feature maps.

        Returns:
            tuple[Tensor]: Their mean, of the same shape, as a one-element tuple.
        """
        feats = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs, )
        if not feats or not all(isinstance(x, Tensor) for x in feats):
            raise ValueError('BlockAverageNeck takes the backbone\'s tuple of block outputs (tensors), got '
                             f'{[type(x).__name__ for x in feats]}.')
        if self.num_inputs is not None and len(feats) != self.num_inputs:
            raise ValueError(f'BlockAverageNeck(num_inputs={self.num_inputs}) got {len(feats)} block outputs: '
                             f'set backbone.out_indices to {self.num_inputs} blocks.')
        shapes = {tuple(x.shape) for x in feats}
        if len(shapes) > 1:
            raise ValueError(f'BlockAverageNeck averages outputs of one shape, got shapes {sorted(shapes)}.')
        if self.normalize:
            feats = tuple(self.standardize(x) for x in feats)
        return (torch.stack(feats).mean(0), )

    def standardize(self, x: Tensor) -> Tensor:
        """Zero mean and unit variance over the channels (dim 1 of a (B, C, H, W) map, else the last dim)."""
        if x.dim() == 4:
            return F.layer_norm(x.transpose(1, 3), x.shape[1:2], eps=self.eps).transpose(1, 3)
        return F.layer_norm(x, x.shape[-1:], eps=self.eps)
