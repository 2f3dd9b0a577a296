"""What a SAIM model computes for images: features, reconstructions, completions and attention maps.

``model`` is a saim_mm ``SAIM`` (e.g. from ``mmpretrain.get_model('<index name>', pretrained=PATH)``; the
features also work with any mmpretrain model whose ``backbone`` is a ViT, such as the fine-tuned
classifiers). Images are file paths or (B, 3, H, W) tensors already normalised by the model's data
preprocessor; files are read with :func:`load_image`. Predictions live in the target space of
``GaussianPixelLoss`` (smoothed, and standardised per patch with ``norm_pix``); :func:`reconstruct` and
:func:`complete` map them back to the normalised image space.
"""
from typing import Optional, Sequence, Tuple, Union

import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn

from ..models.utils import SAIMAttention

Images = Union[str, Sequence[str], Tensor]
POOLS = ('cls', 'mean', 'patches')


def init_saim_model(config: str, checkpoint: str, device: str = 'cpu') -> nn.Module:
    """A model built from ``config`` (a config file or a model name of the index) with the weights of
    ``checkpoint`` read by saim_mm's weights-only loader (any layout it reads), in eval mode."""
    from mmpretrain.apis import init_model

    from ..checkpoint import load_pretrained
    model = init_model(config, None, device=device)
    load_pretrained(model, checkpoint)
    return model.eval()


def load_image(path: str, model: nn.Module, size: Optional[Tuple[int, int]] = None) -> Tensor:
    """Read an image file as the (1, 3, H, W) normalised input of ``model``.

    Args:
        path (str): Image file (any format PIL reads; converted to RGB).
        model: The model; its data preprocessor gives mean and std.
        size (tuple, optional): (H, W); defaults to the backbone's ``img_size``. Resized bicubic.
    """
    try:
        img = Image.open(path).convert('RGB')
    except OSError as e:
        raise OSError(f'cannot read image {path!r}: {e}') from e
    if size is None:
        p = model.backbone.patch_size
        h, w = model.backbone.patch_resolution
        size = (h * p, w * p)
    img = img.resize((size[1], size[0]), Image.BICUBIC)
    x = torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1)[None].float()
    pre = model.data_preprocessor
    return (x.to(pre.mean.device) - pre.mean) / pre.std


def as_batch(images: Images, model: nn.Module) -> Tensor:
    """File path(s) or a (B, 3, H, W) normalised tensor (returned as it is) -> (B, 3, H, W)."""
    if isinstance(images, Tensor):
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f'images must be (B, 3, H, W), got a tensor of shape {tuple(images.shape)}.')
        return images
    paths = [images] if isinstance(images, str) else list(images)
    if not paths:
        raise ValueError('images is empty.')
    return torch.cat([load_image(p, model) for p in paths])


@torch.no_grad()
def extract_features(model: nn.Module, images: Images,
                     pool: Union[str, Sequence[str]] = 'cls') -> Union[Tensor, Tuple[Tensor, ...]]:
    """Features of the encoder in its plain (transfer-time) forward: no order, no masks.

    Args:
        model: A SAIM model or any model with a ViT ``backbone``.
        images: Path(s) or a (B, 3, H, W) normalised tensor.
        pool (str | Sequence[str]): ``'cls'``: the cls token of the last block after the final norm (the
            recipe's feature, what the linear probe sees); ``'mean'``: the mean of the patch tokens there;
            ``'patches'``: every patch token there, (B, L, C) in raster order (what an attentive probe
            reads); a sequence of these for several features from one forward pass.

    Returns:
        Tensor | tuple[Tensor]: (B, C) (``'patches'``: (B, L, C)), or one per entry of ``pool``.
    """
    pools = [pool] if isinstance(pool, str) else list(pool)
    if not pools or any(p not in POOLS for p in pools):
        raise ValueError(f'pool must be one of {POOLS} or a sequence of them, got {pool!r}.')
    backbone = model.backbone
    x = as_batch(images, model)
    out_type = backbone.out_type
    backbone.out_type = 'raw'  # every token after the final norm, (B, N+1, C); mmpretrain formats the output
    try:
        tokens = backbone(x)[-1]
    finally:
        backbone.out_type = out_type
    patches = tokens[:, backbone.num_extra_tokens:]
    feats = tuple(tokens[:, 0] if p == 'cls' else patches.mean(1) if p == 'mean' else patches for p in pools)
    return feats[0] if isinstance(pool, str) else feats


@torch.no_grad()
def attention_maps(model: nn.Module, images: Images, layer: int = -1) -> Tensor:
    """Softmax attention of one encoder block in the plain (transfer-time, unmasked) forward.

    The block's attention module keeps its weights for this forward (``attn.keep_weights``).

    Args:
        model: A SAIM model or any model whose ``backbone`` has ``SAIMTransformerLayer`` blocks.
        images: Path(s) or a (B, 3, H, W) normalised tensor.
        layer (int): Block index (negative counts from the end). Defaults to the last block (Fig. 2).

    Returns:
        Tensor: (B, heads, N+1, N+1); token 0 is the cls token, then the patches in raster order.
    """
    backbone = model.backbone
    attn = backbone.layers[layer].attn
    if not isinstance(attn, SAIMAttention):
        raise TypeError(f'attention_maps needs SAIMAttention blocks (SAIMTransformerLayer); block {layer} of '
                        f'{type(backbone).__name__} has {type(attn).__name__}.')
    x = as_batch(images, model)
    attn.keep_weights = True
    try:
        backbone(x)
        return attn.weights
    finally:
        attn.keep_weights, attn.weights = False, None


def patch_stats(target_raw: Tensor) -> Tuple[Tensor, Tensor]:
    """Per-patch mean and std (unbiased, eps 1e-6) of (B, N, P) raw target patches, as norm-pix uses."""
    mean = target_raw.mean(dim=-1, keepdim=True)
    std = (target_raw.var(dim=-1, keepdim=True) + 1e-6)**.5
    return mean, std


def unpatchify(patches: Tensor, model: nn.Module) -> Tensor:
    """(B, N, p*p*3) in raster order -> (B, 3, H, W)."""
    p = model.backbone.patch_size
    h, w = model.backbone.patch_resolution
    B = patches.shape[0]
    x = patches.reshape(B, h, w, p, p, 3)
    return torch.einsum('nhwpqc->nchpwq', x).reshape(B, 3, h * p, w * p)


def smoothed_target_patches(model: nn.Module, x: Tensor) -> Tensor:
    """Raw (not standardised) patches of the smoothed image, (B, N, p*p*3), raster order."""
    head = model.head
    return head.patchify(head.smooth(x))


@torch.no_grad()
def reconstruct(model: nn.Module, images: Images, order: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
    """Predict every patch from the true patches before it in a generation order (one forward pass).

    Norm-pix predictions are mapped back with the true patch mean and std (as MAE's visualisation does).

    Args:
        model: A SAIM model.
        images: Path(s) or a (B, 3, H, W) normalised tensor.
        order (Tensor, optional): (B, N) generation order (raster patch indices); drawn as the model draws
            it in training (``model.order``: stochastic or raster) when None.

    Returns:
        tuple[Tensor, Tensor]: the smoothed target image and the predicted image, each (B, 3, H, W).
    """
    x = as_batch(images, model)
    if order is None:
        order = model.sample_order(x.shape[0], x.device)
    raw = smoothed_target_patches(model, x)
    pred = model.predict_patches(x, order)  # generation order
    pred = torch.empty_like(pred).scatter_(1, order[..., None].expand_as(pred), pred)  # back to raster
    if model.head.norm_pix:
        mean, std = patch_stats(raw)
        pred = pred * std + mean
    return unpatchify(raw, model), unpatchify(pred, model)


@torch.no_grad()
def complete(model: nn.Module, image: Images, keep: Tensor, order: Optional[Tensor] = None) -> Tensor:
    """Keep the patches in ``keep`` and generate the others one by one, each from all patches before it.

    The generation order puts the kept patches first; the others follow in ``order`` (raster order of
    the missing patches when None). A generated patch is written into the image before the next step,
    so later patches are conditioned on earlier predictions. Norm-pix predictions are mapped to pixels
    with the mean and std of all kept pixels (the true statistics of a missing patch are not used).

    Args:
        model: A SAIM model.
        image: One path or a (1, 3, H, W) normalised tensor.
        keep (Tensor): (N,) bool, raster order: patches given to the model.
        order (Tensor, optional): (N - keep.sum(),) the missing patches' raster indices, in the order
            to generate them.

    Returns:
        Tensor: (1, 3, H, W) the completed image (kept patches are the input's).
    """
    x = as_batch(image, model)
    if x.shape[0] != 1:
        raise ValueError(f'complete takes one image, got a batch of {x.shape[0]}.')
    head = model.head
    patches = head.patchify(x).clone()  # raster, model input space
    kept = keep.nonzero().flatten()
    missing = (~keep).nonzero().flatten() if order is None else order
    if sorted(missing.tolist()) != (~keep).nonzero().flatten().tolist():
        raise ValueError('order must list exactly the patches that keep leaves out.')
    full_order = torch.cat([kept, missing])[None]
    patches[0, missing] = 0.0  # unseen content; causality makes its value irrelevant
    if head.norm_pix:
        vis = smoothed_target_patches(model, x)[0, kept]
        mean, std = vis.mean(), vis.std()
    for t in range(len(kept), full_order.shape[1]):
        pred = model.predict_patches(unpatchify(patches, model), full_order)[0, t]
        if head.norm_pix:
            pred = pred * std + mean
        patches[0, full_order[0, t]] = pred
    return unpatchify(patches, model)
