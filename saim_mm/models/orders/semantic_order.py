from typing import Dict, Optional, Sequence

import torch
from mmpretrain.models import VisionTransformer
from mmpretrain.registry import MODELS
from torch import Tensor, nn

from .base_order import BaseGenerationOrder

SOURCES = ('encoder', 'teacher')
SIMILARITIES = ('cls', 'mean_patch', 'attention')
RANKINGS = ('distance', 'similarity')


@MODELS.register_module()
class SemanticOrder(BaseGenerationOrder):
    """SemAIM's semantic-aware order (Song et al., AAAI 2024): from the most semantic patch outwards.

    Per sample, computed from the image without gradients:

    1. A bidirectional pass of a ViT (``source``: the model's encoder or the EMA teacher's encoder), in
       eval mode, gives the tokens ``t_cls, t_0 .. t_{N-1}`` (C each) of the last block after the final
       norm.
    2. Each patch gets a similarity ``s_i`` (``similarity``): ``'cls'`` the cosine similarity
       ``cos(t_cls, t_i)``; ``'mean_patch'`` ``cos(mean_j t_j, t_i)``; ``'attention'`` the last block's
       softmax attention of the cls token to patch i, averaged over the heads.
    3. The start patch is ``a = argmax_i s_i`` (the first one on ties); it is step 0.
    4. Every other patch i gets the value ``v_i`` (``ranking``): ``'distance'`` (SemAIM) the Euclidean
       distance ``||(r_i, c_i) - (r_a, c_a)||`` on the patch grid, in patch widths; ``'similarity'`` (the
       paper's "similarity order" ablation) ``-s_i``. The key is ``v_i + noise * u_i`` with
       ``u_i ~ U(0, 1)`` drawn per sample and call, and the patches follow the start by increasing key
       (equal keys in raster order).

    ``noise`` bounds how far the order departs from sorting by ``v``: patch i can come before patch j only
    if ``v_i < v_j + noise``. With ``ranking='distance'`` distinct distances on an h x w grid differ by at
    least ``1 / (2 sqrt((h-1)^2 + (w-1)^2))`` (0.027 for 14 x 14), so the default 1e-3 only shuffles the
    patches at the same distance (as the authors' code does); a noise above 1 lets rings of neighbouring
    distances mix. With ``noise=0`` the order is deterministic.

    Args:
        grid (tuple[int, int]): The patch grid (h, w); filled in by ``SAIM``.
        source (str): ``'encoder'``: ``model.backbone``; ``'teacher'``: ``model.head.teacher.encoder`` (the
            EMA teacher's encoder). Defaults to ``'encoder'``.
        similarity (str): ``'cls'``, ``'mean_patch'`` or ``'attention'``. Defaults to ``'cls'``.
        ranking (str): ``'distance'`` or ``'similarity'``. Defaults to ``'distance'``.
        noise (float): The scale of the uniform noise added to the ranking value (distance in patch widths,
            or similarity). Defaults to 1e-3.
        segment_size (int): Only 1 (one patch a step). Defaults to 1.
        init_cfg (dict, optional): Initialisation config.
    """
    name = 'semantic'
    fixed = False
    needs_images = True

    def __init__(self,
                 grid: Sequence[int],
                 source: str = 'encoder',
                 similarity: str = 'cls',
                 ranking: str = 'distance',
                 noise: float = 1e-3,
                 segment_size: int = 1,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(grid, init_cfg=init_cfg)
        for key, value, choices in (('source', source, SOURCES), ('similarity', similarity, SIMILARITIES),
                                    ('ranking', ranking, RANKINGS)):
            if value not in choices:
                raise ValueError(f'SemanticOrder {key} must be one of {choices}, got {value!r}.')
        if isinstance(noise, bool) or not isinstance(noise, (int, float)) or not 0 <= noise < float('inf'):
            raise ValueError(f'SemanticOrder noise must be a finite number >= 0, got {noise!r}.')
        if segment_size != 1:
            raise ValueError(f'SemanticOrder segment_size={segment_size!r}: a semantic order with segments is '
                             'not supported; segment_size must be 1.')
        self.source = source
        self.similarity = similarity
        self.ranking = ranking
        self.noise = float(noise)

    def forward(self,
                batch_size: int,
                device: Optional[torch.device] = None,
                images: Optional[Tensor] = None,
                model: Optional[nn.Module] = None) -> Tensor:
        """The orders of a batch of images.

        Args:
            batch_size (int): B.
            device (torch.device, optional): Device of the result (the images' when None).
            images (Tensor): Normalised images (B, 3, H, W), H x W the encoder's ``img_size``.
            model (nn.Module): The ``SAIM`` model whose encoder (or teacher) scores the patches.

        Returns:
            Tensor: Long tensor (B, N); row b is a permutation of ``range(N)`` (raster patch indices).
        """
        if images is None or model is None:
            raise ValueError('SemanticOrder is computed from the images: call it as order(batch_size, device, '
                             'images=(B, 3, H, W), model=<the SAIM model>) (SAIM.sample_order does).')
        if images.dim() != 4 or images.shape[0] != batch_size:
            raise ValueError(f'SemanticOrder images must have shape (B, 3, H, W) with B = batch_size = '
                             f'{batch_size}, got {tuple(images.shape)}.')
        scores = self.scores(self.encoder_of(model), images)
        return self.order_from_scores(scores).to(images.device if device is None else device)

    def encoder_of(self, model: nn.Module) -> VisionTransformer:
        """The ViT that scores the patches: ``model.backbone`` or ``model.head.teacher.encoder``."""
        if self.source == 'encoder':
            encoder, where = getattr(model, 'backbone', None), 'model.backbone'
        else:
            teacher = getattr(getattr(model, 'head', None), 'teacher', None)
            encoder, where = getattr(teacher, 'encoder', None), 'model.head.teacher.encoder'
            if encoder is None:
                raise ValueError(
                    f"order.source='teacher' needs a teacher with an encoder ({where}, e.g. head=dict(type="
                    f"'FeatureTargetHead', teacher=dict(type='EMATeacher'))), but the head "
                    f"{type(getattr(model, 'head', None)).__name__} has none; use order.source='encoder'.")
        if not isinstance(encoder, VisionTransformer) or getattr(encoder, 'cls_token', None) is None:
            raise TypeError(f"order.source={self.source!r}: {where} must be a ViT with a cls token (SAIMViT), got "
                            f'{type(encoder).__name__}.')
        return encoder

    def scores(self, encoder: VisionTransformer, images: Tensor) -> Tensor:
        """The similarity ``s`` (B, N) of every patch (raster order), from a bidirectional eval-mode pass
        without gradients; the training flags of the encoder's modules are restored afterwards."""
        modes: Dict[nn.Module, bool] = {m: m.training for m in encoder.modules()}
        attn = encoder.layers[-1].attn
        if self.similarity == 'attention' and not hasattr(attn, 'keep_weights'):
            raise TypeError(f"SemanticOrder similarity='attention' needs SAIMAttention blocks; the last block of "
                            f'the {self.source} has {type(attn).__name__}.')
        encoder.eval()
        try:
            with torch.no_grad():
                if self.similarity == 'attention':
                    attn.keep_weights = True
                tokens = self.final_tokens(encoder, images)
                dtype = torch.promote_types(tokens.dtype, torch.float32)  # half-precision tokens scored in fp32
                if self.similarity == 'attention':
                    return attn.weights[:, :, 0, 1:].to(dtype).mean(dim=1)  # (B, heads, 1+N, 1+N) -> (B, N)
                tokens = tokens.to(dtype)
                patches = tokens[:, 1:]
                anchor = tokens[:, :1] if self.similarity == 'cls' else patches.mean(dim=1, keepdim=True)
                return torch.cosine_similarity(anchor, patches, dim=-1)
        finally:
            if self.similarity == 'attention':
                attn.keep_weights, attn.weights = False, None
            for module, mode in modes.items():
                module.training = mode

    def final_tokens(self, encoder: VisionTransformer, images: Tensor) -> Tensor:
        """The tokens (B, 1+N, C) of the last block after the final norm, cls token first.

        The plain ViT forward formats its output by the config's ``out_type`` and ``out_indices`` (chosen
        for transfer); the blocks run here so that the order always reads the last one.
        """
        patches, hw = encoder.patch_embed(images)
        if tuple(hw) != self.grid:
            raise ValueError(f'SemanticOrder: the images give a {hw[0]}x{hw[1]} patch grid, the order is for '
                             f'{self.grid[0]}x{self.grid[1]} (images of the encoder img_size).')
        cls = encoder.cls_token.expand(patches.shape[0], -1, -1)
        x = torch.cat([cls, patches], dim=1) + encoder.pos_embed
        x = encoder.pre_norm(encoder.drop_after_pos(x))
        for layer in encoder.layers:
            x = layer(x)
        return encoder.ln1(x) if encoder.final_norm else x

    def order_from_scores(self, scores: Tensor) -> Tensor:
        """The orders (B, N) from the similarities ``scores`` (B, N) (steps 3 and 4 of the class docstring)."""
        B, N = scores.shape
        start = scores.argmax(dim=1)  # (B,)
        if self.ranking == 'distance':
            w = self.grid[1]
            cells = torch.arange(N, device=scores.device)
            rows, cols = cells // w, cells % w
            d2 = (rows[None] - rows[start, None])**2 + (cols[None] - cols[start, None])**2  # exact integers
            value = d2.double().sqrt()
        else:
            value = -scores.double()
        key = value + self.noise * torch.rand(B, N, dtype=torch.float64, device=scores.device) if self.noise \
            else value
        key.scatter_(1, start[:, None], float('-inf'))  # the start patch is step 0 whatever the noise
        return key.argsort(dim=1, stable=True)
