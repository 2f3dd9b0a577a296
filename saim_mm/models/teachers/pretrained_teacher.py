from contextlib import contextmanager
from typing import Optional

from mmengine.logging import print_log
from mmpretrain.models import VisionTransformer
from mmpretrain.registry import MODELS
from torch import Tensor, nn

from ...checkpoint import (check_state_dict, checkpoint_filter_fn, detect_layout, fuse_qkv,
                           load_state_dict_file, mm_to_timm, strip_prefix)
from .base_teacher import BaseTeacher, check_block, parameters_to_buffers, vit_patch_tokens

TIMM = 'timm'  # model=dict(type='timm', model_name=...): a timm ViT


@MODELS.register_module()
class PretrainedTeacher(BaseTeacher):
    """A pre-trained ViT read from a local checkpoint (D-iGPT's feature targets: e.g. a CLIP ViT).

    The ViT is built from ``model``: an mmpretrain ``VisionTransformer`` (or a subclass such as ``SAIMViT``)
    config, e.g. ``dict(type='mmpretrain.VisionTransformer', arch='b', img_size=224, patch_size=16)``, or a
    timm ViT, ``dict(type='timm', model_name='vit_base_patch16_clip_224', **create_model_kwargs)`` (built
    without weights and without classifier). Its weights come from ``checkpoint``, a local file read
    weights-only (``saim_mm.checkpoint``: a pickle that would run code is refused):

    - an mmpretrain ViT takes any layout saim_mm reads (its own, ``backbone.*`` of an mmpretrain or saim_mm
      checkpoint, timm's, the authors'), converted by ``checkpoint_filter_fn``; its position embedding is
      resized to the model's grid;
    - a timm ViT takes timm's layouts (converted by timm's ``checkpoint_filter_fn``: OpenAI CLIP, DINOv2,
      ...; the position embedding resampled), the authors' (q, k, v fused) or an mmpretrain / saim_mm
      encoder (renamed to timm's names); a classifier ``head.*`` in the file is dropped.

    A file that does not fit then (a missing or unexpected key, a shape mismatch) is an error naming the
    file, the keys and the shapes. The weights are buffers outside the state dict (a SAIM checkpoint does
    not carry them; the file is read again by :meth:`init_weights`).

    The features are the patch tokens (no cls or register tokens) of the plain forward after block
    ``block``; after the last block, with the ViT's final norm when it has one.

    Args:
        model (dict): Config of the ViT (see above).
        checkpoint (str): Path of its weights (``torch.save`` or ``.safetensors``).
        block (int): The block whose output is the feature; negative counts from the end. Defaults to -1.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self, model: dict, checkpoint: str, block: int = -1, init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if not isinstance(model, dict) or 'type' not in model:
            raise ValueError(f'teacher.model must be a config dict with a type (an mmpretrain VisionTransformer '
                             f"or dict(type='timm', model_name=...)), got {model!r}.")
        self.model_type = str(model['type'])
        self.is_timm = model['type'] == TIMM
        self.model = self.build_timm(model) if self.is_timm else self.build_mmpretrain(model)
        self.checkpoint = checkpoint
        depth = len(self.model.blocks if self.is_timm else self.model.layers)
        self.block = check_block(block, depth)
        self._shapes = {k: tuple(v.shape) for k, v in self.model.state_dict().items()}  # what a file must hold
        self._frozen = [(m, name) for m in self.model.modules() for name, p in m._parameters.items() if p is not None]
        parameters_to_buffers(self.model, persistent=False)
        self.model.train(False)
        self.load_checkpoint()

    @staticmethod
    def build_timm(model: dict) -> nn.Module:
        """``timm.create_model(model_name, pretrained=False, num_classes=0, **rest)``; a timm ViT."""
        import timm
        cfg = {k: v for k, v in model.items() if k != 'type'}
        if 'model_name' not in cfg:
            raise ValueError(f"teacher.model of type 'timm' needs model_name (a timm ViT, e.g. "
                             f"'vit_base_patch16_224'), got keys {sorted(cfg)}.")
        vit = timm.create_model(cfg.pop('model_name'), **dict(dict(pretrained=False, num_classes=0), **cfg))
        if not hasattr(vit, 'forward_intermediates') or not hasattr(vit, 'blocks'):
            raise TypeError(f'teacher.model {model["model_name"]!r} is a timm {type(vit).__name__}, not a '
                            'ViT with blocks and forward_intermediates.')
        return vit

    @staticmethod
    def build_mmpretrain(model: dict) -> nn.Module:
        """``MODELS.build(model)``, which must be an mmpretrain ``VisionTransformer``."""
        vit = MODELS.build(model)
        if not isinstance(vit, VisionTransformer):
            raise TypeError(f'teacher.model.type={model["type"]!r} builds a {type(vit).__name__}: expected an '
                            "mmpretrain VisionTransformer (or a subclass) or dict(type='timm', model_name=...).")
        return vit

    @property
    def out_channels(self) -> int:
        """The ViT width."""
        return self.model.embed_dim if self.is_timm else self.model.embed_dims

    def read_checkpoint(self) -> dict:
        """The state dict of :attr:`checkpoint` in the layout of :attr:`model`; a ``ConversionError`` naming
        the file, the keys and the shapes if it does not fit."""
        weights = strip_prefix(load_state_dict_file(self.checkpoint, allow_namespace=True)[0], 'module.')
        source = f'Checkpoint {self.checkpoint}'
        if self.is_timm:
            from timm.models.vision_transformer import checkpoint_filter_fn as timm_filter_fn
            layout = (detect_layout(weights, None) or ('timm', ''))[0]
            if layout in ('saim_mm', 'backbone', 'encoder'):
                encoder = {k[9:]: v for k, v in weights.items() if k.startswith('backbone.')} or weights
                weights = mm_to_timm(encoder)
            elif layout == 'authors':
                weights = fuse_qkv(weights)
            weights = timm_filter_fn(weights, self.model)
            dropped = sorted(k for k in weights if k.startswith('head.') and k not in self._shapes)
            weights = {k: v for k, v in weights.items() if k not in dropped}
            if dropped:
                print_log(f'{source}: the classifier {dropped} is not part of the teacher', logger='current')
            expected = self._shapes
        else:
            weights = checkpoint_filter_fn(weights, self.model, source)
            expected = {k: (None if k.endswith('pos_embed') else v) for k, v in self._shapes.items()}
        check_state_dict(weights, expected, f'{source} for the teacher {self.model_type}')
        return weights

    @contextmanager
    def weights_in_state_dict(self):
        """Within: the ViT's frozen weights are in its state dict (to convert and load a file into it)."""
        for m, name in self._frozen:
            m._non_persistent_buffers_set.discard(name)
        try:
            yield
        finally:
            for m, name in self._frozen:
                m._non_persistent_buffers_set.add(name)

    def load_checkpoint(self) -> None:
        """Read :attr:`checkpoint` into the ViT (through its own load hooks, e.g. position embedding resizing)."""
        with self.weights_in_state_dict():
            self.model.load_state_dict(self.read_checkpoint(), strict=True)

    def init_weights(self) -> None:
        """Read the checkpoint again (a model-wide initialisation may have written over the weights)."""
        self.load_checkpoint()
        self._is_init = True

    def features(self, images: Tensor) -> Tensor:
        """Patch tokens (B, N, C) after block ``block``."""
        if not self.is_timm:
            return vit_patch_tokens(self.model, images, self.block)
        last = self.block == len(self.model.blocks) - 1
        return self.model.forward_intermediates(images, indices=[self.block], norm=last, stop_early=True,
                                                output_fmt='NLC', intermediates_only=True)[0]
