"""What a SAIM model sees and predicts: attention maps, reconstructions and patch-by-patch completion.

Used by the scripts in tools/visualization/. Images are (B, 3, H, W) tensors normalised by the model's
data preprocessor; predictions live in the target space of ``GaussianPixelLoss`` (smoothed, and
standardised per patch when ``norm_pix``).
"""
from typing import Optional, Tuple

import numpy as np
import torch
from PIL import Image
from torch import Tensor


def load_image(path: str, model, size: Optional[Tuple[int, int]] = None) -> Tensor:
    """Read an image file as the (1, 3, H, W) normalised input of ``model`` (resized to its img_size)."""
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


def to_uint8(x: Tensor, model) -> np.ndarray:
    """Undo the preprocessor's normalisation: (3, H, W) -> (H, W, 3) uint8 RGB."""
    pre = model.data_preprocessor
    img = (x * pre.std.view(3, 1, 1) + pre.mean.view(3, 1, 1)).clamp(0, 255)
    return img.permute(1, 2, 0).round().byte().cpu().numpy()


@torch.no_grad()
def last_layer_attention(model, x: Tensor) -> Tensor:
    """Softmax attention of the last encoder block in the plain (transfer-time, unmasked) forward.

    Returns:
        Tensor: (B, heads, N+1, N+1); token 0 is the cls token.
    """
    backbone = model.backbone
    captured = {}
    handle = backbone.layers[-1].register_forward_pre_hook(lambda m, args: captured.update(x=args[0]))
    try:
        backbone(x)
    finally:
        handle.remove()
    return backbone.layers[-1](captured['x'], return_attention=True)[1]


def patch_stats(target_raw: Tensor) -> Tuple[Tensor, Tensor]:
    """Per-patch mean and std (unbiased, eps 1e-6) of (B, N, P) raw target patches, as norm-pix uses."""
    mean = target_raw.mean(dim=-1, keepdim=True)
    std = (target_raw.var(dim=-1, keepdim=True) + 1e-6)**.5
    return mean, std


def unpatchify(patches: Tensor, model) -> Tensor:
    """(B, N, p*p*3) in raster order -> (B, 3, H, W)."""
    p = model.backbone.patch_size
    h, w = model.backbone.patch_resolution
    B = patches.shape[0]
    x = patches.reshape(B, h, w, p, p, 3)
    return torch.einsum('nhwpqc->nchpwq', x).reshape(B, 3, h * p, w * p)


def smoothed_target_patches(model, x: Tensor) -> Tensor:
    """Raw (not standardised) patches of the smoothed image, (B, N, p*p*3), raster order."""
    head = model.head
    return head.patchify(head.smooth(x))


@torch.no_grad()
def reconstruct(model, x: Tensor, order: Tensor) -> Tuple[Tensor, Tensor]:
    """Predict every patch from the true preceding patches (one forward, teacher forcing).

    Norm-pix predictions are mapped back to pixels with the true patch mean/std (as MAE's visualisation).

    Returns:
        tuple[Tensor, Tensor]: the smoothed target image and the predicted image, each (B, 3, H, W).
    """
    raw = smoothed_target_patches(model, x)
    pred = model.predict_patches(x, order)  # generation order
    pred = torch.empty_like(pred).scatter_(1, order[..., None].expand_as(pred), pred)  # back to raster
    if model.head.norm_pix:
        mean, std = patch_stats(raw)
        pred = pred * std + mean
    return unpatchify(raw, model), unpatchify(pred, model)


@torch.no_grad()
def complete(model, x: Tensor, keep: Tensor, order: Optional[Tensor] = None) -> Tensor:
    """Keep the patches in ``keep`` and generate the others one by one, each from all patches before it.

    The generation order puts the kept patches first; the others follow in ``order`` (raster order of
    the missing patches when None). A generated patch is written into the image before the next step,
    so later patches are conditioned on earlier predictions. Norm-pix predictions are mapped to pixels
    with the mean and std of all kept pixels (the true statistics of a missing patch are not used).

    Args:
        x (Tensor): (1, 3, H, W) image.
        keep (Tensor): (N,) bool, raster order: patches given to the model.
        order (Tensor, optional): (N - keep.sum(),) the missing patches' raster indices, in the order
            to generate them.

    Returns:
        Tensor: (1, 3, H, W) the completed image (kept patches are the input's).
    """
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


def heatmap(values: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """(h, w) values -> (H, W, 3) uint8 colour map (min-max scaled, nearest-neighbour upsampled)."""
    from matplotlib import colormaps
    v = values - values.min()
    v = v / v.max() if v.max() > 0 else v
    rgb = (colormaps['inferno'](v)[..., :3] * 255).astype(np.uint8)
    return np.asarray(Image.fromarray(rgb).resize((size[1], size[0]), Image.NEAREST))


def tile_row(images, tile: int) -> Image.Image:
    """Resize (H, W, 3) uint8 arrays to ``tile`` x ``tile`` and put them side by side."""
    row = Image.new('RGB', (tile * len(images), tile))
    for i, img in enumerate(images):
        row.paste(Image.fromarray(img).resize((tile, tile), Image.NEAREST), (i * tile, 0))
    return row


__all__ = ['load_image', 'to_uint8', 'last_layer_attention', 'reconstruct', 'complete', 'heatmap',
           'tile_row', 'unpatchify']
