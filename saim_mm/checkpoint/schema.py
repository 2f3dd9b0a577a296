"""Key layouts and shapes of saim_mm (mmpretrain-layout) ViT state dicts, and the checks against them.

Every layout conversion ends with :func:`check_state_dict` against the shapes the architecture implies
(:func:`vit_shapes`, :func:`saim_decoder_shapes`), so a file that does not fit is reported with its
missing and unexpected keys and its shape mismatches.
"""
import re
from typing import Dict, List, Mapping

import torch
from torch import Tensor

from .errors import ConversionError

StateDict = Dict[str, Tensor]

# (timm / authors' name, mmpretrain name) of the embedding parameters, shared by both foreign layouts.
EMBED_RENAMES = (('cls_token', 'cls_token'), ('pos_embed', 'pos_embed'),
                 ('patch_embed.proj.weight', 'patch_embed.projection.weight'),
                 ('patch_embed.proj.bias', 'patch_embed.projection.bias'))
# Block parameters: (timm / authors' suffix, mmpretrain suffix). The attention input projection is handled
# separately (fused ``qkv`` in mmpretrain and timm, separate ``q``, ``k``, ``v`` in the authors' code).
BLOCK_RENAMES = (('norm1', 'ln1'), ('attn.proj', 'attn.proj'), ('norm2', 'ln2'), ('mlp.fc1', 'ffn.layers.0.0'),
                 ('mlp.fc2', 'ffn.layers.1'))


def strip_prefix(state_dict: Mapping[str, Tensor], prefix: str) -> StateDict:
    """Remove ``prefix`` from every key that has it (e.g. ``'module.'`` of DistributedDataParallel)."""
    return {(k[len(prefix):] if k.startswith(prefix) else k): v for k, v in state_dict.items()}


def require_keys(state_dict: Mapping[str, Tensor], keys: List[str], what: str) -> None:
    """Raise :class:`ConversionError` naming the ``keys`` that ``state_dict`` lacks, if any."""
    missing = [k for k in keys if k not in state_dict]
    if missing:
        present = sorted(state_dict)[:8]
        raise ConversionError(f'{what}: missing keys {missing}; the file has e.g. {present}. Is it the right '
                              'kind of checkpoint?')


def num_blocks(state_dict: Mapping[str, Tensor], prefix: str) -> int:
    """Number of blocks ``{prefix}N.*`` (the highest ``N`` plus one; 0 if there are none)."""
    pattern = re.compile(re.escape(prefix) + r'(\d+)\.')
    found = {int(m.group(1)) for m in map(pattern.match, state_dict) if m}
    return max(found) + 1 if found else 0


def check_state_dict(state_dict: Mapping[str, Tensor], expected: Mapping[str, tuple], what: str) -> None:
    """Raise :class:`ConversionError`, naming missing/unexpected keys and shape mismatches, unless
    ``state_dict`` has exactly the keys and shapes of ``expected``."""
    missing = [f'{k} {list(s)}' for k, s in expected.items() if k not in state_dict]
    unexpected = [f'{k} {list(v.shape)}' for k, v in state_dict.items() if k not in expected]
    shapes = [f'{k}: got {list(v.shape)}, expected {list(expected[k])}' for k, v in state_dict.items()
              if k in expected and tuple(v.shape) != tuple(expected[k])]
    if not (missing or unexpected or shapes):
        return
    parts = [f'{what} does not fit:']
    for name, items in (('missing keys', missing), ('unexpected keys', unexpected), ('shape mismatches', shapes)):
        if items:
            more = f' ... ({len(items)} in all)' if len(items) > 12 else ''
            parts.append(f'{name}: ' + ', '.join(items[:12]) + more)
    raise ConversionError('\n  '.join(parts))


def check_fits_model(model: torch.nn.Module, state_dict: Mapping[str, Tensor], what: str = 'state dict') -> None:
    """Raise :class:`ConversionError` unless ``state_dict`` has exactly the keys and shapes of ``model``."""
    check_state_dict(state_dict, {k: tuple(v.shape) for k, v in model.state_dict().items()}, what)


def block_shapes(prefix: str, C: int, hidden: int) -> Dict[str, tuple]:
    """Keys and shapes of one mmpretrain ``TransformerEncoderLayer`` under ``prefix``."""
    return {f'{prefix}ln1.weight': (C, ), f'{prefix}ln1.bias': (C, ),
            f'{prefix}attn.qkv.weight': (3 * C, C), f'{prefix}attn.qkv.bias': (3 * C, ),
            f'{prefix}attn.proj.weight': (C, C), f'{prefix}attn.proj.bias': (C, ),
            f'{prefix}ln2.weight': (C, ), f'{prefix}ln2.bias': (C, ),
            f'{prefix}ffn.layers.0.0.weight': (hidden, C), f'{prefix}ffn.layers.0.0.bias': (hidden, ),
            f'{prefix}ffn.layers.1.weight': (C, hidden), f'{prefix}ffn.layers.1.bias': (C, )}


def vit_shapes(embed_dims: int, depth: int, hidden: int, patch_size: int, in_channels: int, num_tokens: int,
               final_norm: bool = True) -> Dict[str, tuple]:
    """Keys and shapes of an mmpretrain ``VisionTransformer`` (cls token, no layer scale, no pre-norm)."""
    C = embed_dims
    shapes = {'cls_token': (1, 1, C), 'pos_embed': (1, num_tokens, C),
              'patch_embed.projection.weight': (C, in_channels, patch_size, patch_size),
              'patch_embed.projection.bias': (C, )}
    for i in range(depth):
        shapes.update(block_shapes(f'layers.{i}.', C, hidden))
    if final_norm:
        shapes.update({'ln1.weight': (C, ), 'ln1.bias': (C, )})
    return shapes


def saim_decoder_shapes(embed_dims: int, hidden: int, patch_size: int, in_channels: int, num_layers: int,
                        predictor: str) -> Dict[str, tuple]:
    """Keys (under ``neck.``) and shapes of saim_mm's ``SAIMDecoder``.

    Args:
        num_layers (int): query-stream blocks with weights of their own (0 when they are the encoder's).
        predictor (str): ``'mlp'`` (two layers, 4x wide) or ``'linear'``.
    """
    C = embed_dims
    out_dims = patch_size**2 * in_channels
    shapes: Dict[str, tuple] = {}
    for j in range(num_layers):
        shapes.update(block_shapes(f'neck.layers.{j}.', C, hidden))
    shapes.update({'neck.ln.weight': (C, ), 'neck.ln.bias': (C, )})
    if predictor == 'mlp':
        shapes.update({'neck.predictor.fc1.weight': (4 * C, C), 'neck.predictor.fc1.bias': (4 * C, ),
                       'neck.predictor.fc2.weight': (out_dims, 4 * C), 'neck.predictor.fc2.bias': (out_dims, )})
    else:
        shapes.update({'neck.predictor.weight': (out_dims, C), 'neck.predictor.bias': (out_dims, )})
    return shapes


def mm_vit_arch(state_dict: Mapping[str, Tensor], what: str = 'encoder') -> dict:
    """Read the architecture of an mmpretrain-layout ViT state dict (no prefix)."""
    require_keys(state_dict,
                 ['cls_token', 'pos_embed', 'patch_embed.projection.weight', 'layers.0.ffn.layers.0.0.weight'], what)
    w = state_dict['patch_embed.projection.weight']
    return dict(embed_dims=w.shape[0], depth=num_blocks(state_dict, 'layers.'),
                hidden=state_dict['layers.0.ffn.layers.0.0.weight'].shape[0], patch_size=w.shape[-1],
                in_channels=w.shape[1], num_tokens=state_dict['pos_embed'].shape[1])
