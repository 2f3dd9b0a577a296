"""Checkpoint conversion between saim_mm, the authors' SAIM release and timm.

Three layouts of the same ViT:

- saim_mm / mmpretrain (``VisionTransformer``, ``SAIMViT``): ``patch_embed.projection``, ``cls_token``,
  ``pos_embed``, ``layers.N.{ln1, attn.qkv, attn.proj, ln2, ffn.layers.0.0, ffn.layers.1}``, final norm
  ``ln1``; a SAIM checkpoint adds ``neck.layers.N.*`` (query stream), ``neck.ln`` and ``neck.predictor.*``.
- the authors' SAIM (repository qiy20/SAIM): ``patch_embed.proj``, ``cls_token``, ``pos_embed``,
  ``blocks.N.{norm1, attn.q, attn.k, attn.v, attn.proj, norm2, mlp.fc1, mlp.fc2}``, ``query_blocks.N.*``
  (the same block layout), ``norm`` and ``prediction_head.{fc1, fc2}`` (MLP) or ``prediction_head`` (linear)
  of the decoder, the Gaussian kernel ``gaussian_blur.weight``; no final encoder norm.
- timm ``VisionTransformer`` (e.g. ``vit_base_patch16_224``): ``patch_embed.proj``, ``cls_token``,
  ``pos_embed``, ``blocks.N.{norm1, attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2}``, ``norm``, ``head``.

Every conversion is strict: a key it does not know is an error, never silently dropped, and the result is
checked against the shapes the architecture implies, so a file that does not fit is reported with its
missing and unexpected keys and shapes. What a conversion drops on purpose is returned in a
:class:`ConversionReport` for the tools to print.
"""
import argparse
import math
import os.path as osp
import re
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Tuple

import torch
from torch import Tensor

from .checkpoint_safety import CheckpointLoadError, load_checkpoint_file

StateDict = Dict[str, Tensor]

# Block parameters: (timm / authors' suffix, mmpretrain suffix). The attention input projection is handled
# separately (fused ``qkv`` in mmpretrain and timm, separate ``q``, ``k``, ``v`` in the authors' code).
BLOCK_RENAMES = (('norm1', 'ln1'), ('attn.proj', 'attn.proj'), ('norm2', 'ln2'), ('mlp.fc1', 'ffn.layers.0.0'),
                 ('mlp.fc2', 'ffn.layers.1'))
CONTAINER_KEYS = ('state_dict', 'model', 'module')  # where checkpoints keep their weights, in this order


class ConversionError(ValueError):
    """A state dict that does not have the layout a conversion expects (message names keys and shapes)."""


@dataclass
class ConversionReport:
    """What a conversion did besides renaming.

    Attributes:
        dropped (list[tuple[str, tuple]]): source keys (and shapes) deliberately left out.
        added (list[tuple[str, str]]): target keys that have no source, with the reason and value.
        other_entries (list[str]): top-level checkpoint entries that are not weights (optimizer, meta, ...).
        arch (dict): the architecture read from the weights.
    """
    dropped: List[Tuple[str, tuple]] = field(default_factory=list)
    added: List[Tuple[str, str]] = field(default_factory=list)
    other_entries: List[str] = field(default_factory=list)
    arch: dict = field(default_factory=dict)

    def lines(self) -> List[str]:
        """Human-readable summary, one line per fact."""
        out = [f'architecture: {self.arch}'] if self.arch else []
        if self.other_entries:
            out.append(f'dropped checkpoint entries: {", ".join(self.other_entries)}')
        groups: Dict[str, int] = {}
        for key, _ in self.dropped:
            top = key.split('.')[0]
            groups[top] = groups.get(top, 0) + 1
        for top, count in groups.items():
            examples = [f'{k} {list(s)}' for k, s in self.dropped if k.split('.')[0] == top][:3]
            out.append(f'dropped {count} tensor(s) under {top!r}: {", ".join(examples)}'
                       f'{", ..." if count > 3 else ""}')
        for key, why in self.added:
            out.append(f'added {key}: {why}')
        return out


# ----------------------------------------------------------------------------------------------- files
def load_state_dict_file(path: str, allow_namespace: bool = False) -> Tuple[StateDict, List[str]]:
    """Read the weights of a checkpoint file (``weights_only=True``) or a ``.safetensors`` file.

    Args:
        path (str): ``.pth``/``.pt``/``.bin`` written by ``torch.save`` or ``.safetensors``.
        allow_namespace (bool): also allow ``argparse.Namespace`` objects in the file (the ``args`` entry of
            checkpoints written by MAE-style training scripts such as the authors'); it is plain data.

    Returns:
        tuple: the state dict (taken from a ``state_dict``, ``model`` or ``module`` entry when there is one)
        and the names of the other top-level entries.

    Raises:
        FileNotFoundError, CheckpointLoadError: the file is missing, is not a checkpoint or is refused.
        ConversionError: the file holds no tensors.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'Checkpoint {path} does not exist.')
    if path.endswith('.safetensors'):
        from safetensors import SafetensorError
        from safetensors.torch import load_file
        try:
            return dict(load_file(path)), []
        except (SafetensorError, OSError, ValueError) as err:
            raise CheckpointLoadError(f'Cannot load {path}: not a valid .safetensors file ({err}).') from None
    if allow_namespace:
        with torch.serialization.safe_globals([argparse.Namespace]):
            obj = load_checkpoint_file(path, map_location='cpu')
    else:
        obj = load_checkpoint_file(path, map_location='cpu')
    if not isinstance(obj, Mapping):
        raise ConversionError(f'{path} holds a {type(obj).__name__}, not a state dict or checkpoint dict.')
    others: List[str] = []
    for key in CONTAINER_KEYS:
        if isinstance(obj.get(key), Mapping):
            others = [k for k in obj if k != key]
            obj = obj[key]
            break
    weights = {k: v for k, v in obj.items() if isinstance(v, Tensor)}
    if not weights:
        raise ConversionError(f'{path} holds no tensors (top-level keys: {sorted(map(str, obj))[:10]}); '
                              'expected a state dict or a checkpoint with a state_dict/model entry.')
    others += [f'{k} (not a tensor)' for k, v in obj.items() if not isinstance(v, Tensor)]
    return weights, others


def save_state_dict_file(state_dict: StateDict, path: str, meta: Optional[dict] = None) -> None:
    """Write ``state_dict`` as ``.safetensors`` (flat) or as an mmengine checkpoint ``{'state_dict', 'meta'}``."""
    if path.endswith('.safetensors'):
        from safetensors.torch import save_file
        save_file({k: v.detach().contiguous().clone() for k, v in state_dict.items()}, path,
                  metadata={k: str(v) for k, v in (meta or {}).items()})
    else:
        torch.save({'state_dict': state_dict, 'meta': meta or {}}, path)


def strip_prefix(state_dict: StateDict, prefix: str) -> StateDict:
    """Remove ``prefix`` from every key that has it (e.g. ``'module.'`` of DistributedDataParallel)."""
    return {(k[len(prefix):] if k.startswith(prefix) else k): v for k, v in state_dict.items()}


# ------------------------------------------------------------------------------------------ validation
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


def _require(state_dict: Mapping[str, Tensor], keys: List[str], what: str) -> None:
    missing = [k for k in keys if k not in state_dict]
    if missing:
        present = sorted(state_dict)[:8]
        raise ConversionError(f'{what}: missing keys {missing}; the file has e.g. {present}. Is it the right '
                              'kind of checkpoint?')


def _num_blocks(state_dict: Mapping[str, Tensor], prefix: str) -> int:
    pattern = re.compile(re.escape(prefix) + r'(\d+)\.')
    found = {int(m.group(1)) for m in map(pattern.match, state_dict) if m}
    return max(found) + 1 if found else 0


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


def block_shapes(prefix: str, C: int, hidden: int) -> Dict[str, tuple]:
    """Keys and shapes of one mmpretrain ``TransformerEncoderLayer`` under ``prefix``."""
    return {f'{prefix}ln1.weight': (C, ), f'{prefix}ln1.bias': (C, ),
            f'{prefix}attn.qkv.weight': (3 * C, C), f'{prefix}attn.qkv.bias': (3 * C, ),
            f'{prefix}attn.proj.weight': (C, C), f'{prefix}attn.proj.bias': (C, ),
            f'{prefix}ln2.weight': (C, ), f'{prefix}ln2.bias': (C, ),
            f'{prefix}ffn.layers.0.0.weight': (hidden, C), f'{prefix}ffn.layers.0.0.bias': (hidden, ),
            f'{prefix}ffn.layers.1.weight': (C, hidden), f'{prefix}ffn.layers.1.bias': (C, )}


def mm_vit_arch(state_dict: Mapping[str, Tensor], what: str = 'encoder') -> dict:
    """Read the architecture of an mmpretrain-layout ViT state dict (no prefix)."""
    _require(state_dict, ['cls_token', 'pos_embed', 'patch_embed.projection.weight', 'layers.0.ffn.layers.0.0.weight'],
             what)
    w = state_dict['patch_embed.projection.weight']
    return dict(embed_dims=w.shape[0], depth=_num_blocks(state_dict, 'layers.'),
                hidden=state_dict['layers.0.ffn.layers.0.0.weight'].shape[0], patch_size=w.shape[-1],
                in_channels=w.shape[1], num_tokens=state_dict['pos_embed'].shape[1])


# ------------------------------------------------------------------------- saim_mm -> backbone only
def extract_backbone(state_dict: StateDict, prefix: str = 'backbone.') -> Tuple[StateDict, ConversionReport]:
    """The encoder of a saim_mm checkpoint (``SAIM`` or classifier), keys still under ``prefix``.

    The result loads into mmpretrain's ``VisionTransformer`` (and saim_mm's ``SAIMViT`` in mmdet and mmseg)
    with ``init_cfg=dict(type='Pretrained', checkpoint=..., prefix='backbone.')``. Everything else (decoder,
    head) is reported as dropped.

    Raises:
        ConversionError: no ``prefix`` keys, or an encoder that is not a complete ViT.
    """
    backbone = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
    if not backbone:
        tops = sorted({k.split('.')[0] for k in state_dict})
        raise ConversionError(f'no keys under {prefix!r} (top-level names: {tops}); expected a saim_mm '
                              'checkpoint (SAIM pre-training or a classifier).')
    report = ConversionReport(dropped=[(k, tuple(v.shape)) for k, v in state_dict.items()
                                       if not k.startswith(prefix)])
    arch = mm_vit_arch(backbone, f'{prefix[:-1]} encoder')
    check_state_dict(backbone, vit_shapes(**arch, final_norm='ln1.weight' in backbone), f'{prefix[:-1]} encoder')
    report.arch = arch
    return {prefix + k: v for k, v in backbone.items()}, report


# ----------------------------------------------------------------------------- authors' -> saim_mm
def _authors_block(state_dict: StateDict, src: str, dst: str, out: StateDict, used: set) -> None:
    """One authors' block ``src`` (``blocks.N.``) -> mmpretrain block ``dst``; q, k, v fused into qkv."""
    for part in ('weight', 'bias'):
        keys = [f'{src}attn.{n}.{part}' for n in 'qkv']
        _require(state_dict, keys, 'authors\' SAIM checkpoint')
        out[f'{dst}attn.qkv.{part}'] = torch.cat([state_dict[k] for k in keys], dim=0)
        used.update(keys)
    for theirs, ours in BLOCK_RENAMES:
        for part in ('weight', 'bias'):
            key = f'{src}{theirs}.{part}'
            _require(state_dict, [key], 'authors\' SAIM checkpoint')
            out[f'{dst}{ours}.{part}'] = state_dict[key]
            used.add(key)


def gaussian_from_kernel(kernel: Tensor) -> Tuple[int, float]:
    """Kernel size and sigma of a (C, 1, k, k) Gaussian kernel such as the authors' ``gaussian_blur.weight``."""
    k = kernel.shape[-1]
    c = k // 2
    if k < 3:
        return k, float('nan')
    ratio = float(kernel[0, 0, c, c + 1] / kernel[0, 0, c, c])  # exp(-1 / (2 sigma^2))
    return k, math.sqrt(-1.0 / (2.0 * math.log(ratio)))


def official_saim_to_mm(state_dict: StateDict,
                        query_depth: Optional[int] = None) -> Tuple[StateDict, ConversionReport]:
    """The authors' SAIM (``SaimViT`` of qiy20/SAIM) -> a complete saim_mm ``SAIM`` state dict.

    Args:
        state_dict (dict): their model's state dict (``checkpoint['model']``), ``module.`` prefix allowed.
        query_depth (int, optional): decoder depth when their decoder shares the encoder's weights (then
            the checkpoint holds every encoder block under ``query_blocks`` too and the depth used in
            training is not in the weights); defaults to the encoder depth. Ignored otherwise.

    Returns:
        tuple: the saim_mm state dict (``backbone.*``, ``neck.*``) and a report whose ``arch`` gives the
        values for the model config (``neck.num_layers``, ``neck.share_encoder_weights``,
        ``neck.predictor``, ``head.kernel_size``/``sigma``). The heads count is not stored in the weights.

    Raises:
        ConversionError: a missing or unexpected key, or shapes that do not form a ViT.
    """
    sd = strip_prefix(state_dict, 'module.')
    _require(sd, ['cls_token', 'pos_embed', 'patch_embed.proj.weight', 'patch_embed.proj.bias', 'norm.weight',
                  'blocks.0.mlp.fc1.weight'], 'authors\' SAIM checkpoint')
    out: StateDict = {}
    used: set = set()
    report = ConversionReport()
    for theirs, ours in (('cls_token', 'cls_token'), ('pos_embed', 'pos_embed'),
                         ('patch_embed.proj.weight', 'patch_embed.projection.weight'),
                         ('patch_embed.proj.bias', 'patch_embed.projection.bias')):
        out['backbone.' + ours] = sd[theirs]
        used.add(theirs)
    depth = _num_blocks(sd, 'blocks.')
    for i in range(depth):
        _authors_block(sd, f'blocks.{i}.', f'backbone.layers.{i}.', out, used)
    C = sd['cls_token'].shape[-1]
    # Their pre-training model has no final encoder norm (the decoder has its own); mmpretrain's ViT has
    # one (``ln1``), frozen at the identity in saim_mm pre-training. The same identity here.
    out['backbone.ln1.weight'] = torch.ones(C, dtype=sd['norm.weight'].dtype)
    out['backbone.ln1.bias'] = torch.zeros(C, dtype=sd['norm.weight'].dtype)
    report.added += [('backbone.ln1.weight', 'ones (final encoder norm; not in their pre-training model)'),
                     ('backbone.ln1.bias', 'zeros (final encoder norm; not in their pre-training model)')]

    num_query = _num_blocks(sd, 'query_blocks.')
    if num_query == 0:
        raise ConversionError('authors\' SAIM checkpoint has no query_blocks.N.* (decoder) keys.')
    shared = num_query == depth and all(
        torch.equal(sd[k], sd['blocks.' + k[len('query_blocks.'):]]) for k in sd if k.startswith('query_blocks.'))
    if shared:
        dec_depth = query_depth or depth
        if depth % dec_depth:
            raise ConversionError(f'query_depth={dec_depth} must divide the encoder depth {depth}.')
        report.dropped += [(k, tuple(v.shape)) for k, v in sd.items() if k.startswith('query_blocks.')]
        used.update(k for k in sd if k.startswith('query_blocks.'))
    else:
        dec_depth = num_query
        if depth % dec_depth:
            raise ConversionError(f'{dec_depth} query blocks do not divide the encoder depth {depth}.')
        for j in range(dec_depth):
            _authors_block(sd, f'query_blocks.{j}.', f'neck.layers.{j}.', out, used)
    out['neck.ln.weight'], out['neck.ln.bias'] = sd['norm.weight'], sd['norm.bias']
    used.update(('norm.weight', 'norm.bias'))
    if 'prediction_head.fc1.weight' in sd:
        predictor = 'mlp'
        names = ('fc1.weight', 'fc1.bias', 'fc2.weight', 'fc2.bias')
    else:
        predictor = 'linear'
        names = ('weight', 'bias')
    _require(sd, [f'prediction_head.{n}' for n in names], 'authors\' SAIM checkpoint')
    for n in names:
        out[f'neck.predictor.{n}'] = sd[f'prediction_head.{n}']
        used.add(f'prediction_head.{n}')

    patch_w = sd['patch_embed.proj.weight']
    arch = dict(embed_dims=C, depth=depth, hidden=sd['blocks.0.mlp.fc1.weight'].shape[0],
                patch_size=patch_w.shape[-1], in_channels=patch_w.shape[1], num_tokens=sd['pos_embed'].shape[1],
                query_depth=dec_depth, share_encoder_weights=shared, predictor=predictor,
                kernel_size=None, sigma=None)
    if 'gaussian_blur.weight' in sd:  # a fixed buffer; saim_mm's head computes its kernel from k and sigma
        kernel = sd['gaussian_blur.weight']
        arch['kernel_size'], arch['sigma'] = gaussian_from_kernel(kernel)
        report.dropped.append(('gaussian_blur.weight', tuple(kernel.shape)))
        used.add('gaussian_blur.weight')
    unexpected = [f'{k} {list(v.shape)}' for k, v in sd.items() if k not in used]
    if unexpected:
        raise ConversionError(f'authors\' SAIM checkpoint has unexpected keys: {", ".join(unexpected[:12])}'
                              f'{" ..." if len(unexpected) > 12 else ""}')
    expected = {'backbone.' + k: s for k, s in vit_shapes(C, depth, arch['hidden'], arch['patch_size'],
                                                          arch['in_channels'], arch['num_tokens']).items()}
    if not shared:
        for j in range(dec_depth):
            expected.update(block_shapes(f'neck.layers.{j}.', C, arch['hidden']))
    out_dims = arch['patch_size']**2 * arch['in_channels']
    expected.update({'neck.ln.weight': (C, ), 'neck.ln.bias': (C, )})
    if predictor == 'mlp':
        expected.update({'neck.predictor.fc1.weight': (4 * C, C), 'neck.predictor.fc1.bias': (4 * C, ),
                         'neck.predictor.fc2.weight': (out_dims, 4 * C), 'neck.predictor.fc2.bias': (out_dims, )})
    else:
        expected.update({'neck.predictor.weight': (out_dims, C), 'neck.predictor.bias': (out_dims, )})
    check_state_dict(out, expected, 'converted authors\' SAIM checkpoint')
    report.arch = arch
    return out, report


def saim_model_cfg(arch: dict, num_heads: int) -> dict:
    """``model`` overrides (for a config inheriting ``configs/_base_/models/saim_vit-base-p16.py``)."""
    C, p = arch['embed_dims'], arch['patch_size']
    side = int(round(math.sqrt(arch['num_tokens'] - 1)))
    layer = dict(embed_dims=C, num_heads=num_heads, feedforward_channels=arch['hidden'])
    return dict(
        backbone=dict(arch=dict(num_layers=arch['depth'], **layer), img_size=side * p, patch_size=p),
        neck=dict(num_layers=arch['query_depth'], share_encoder_weights=arch['share_encoder_weights'],
                  predictor=arch['predictor'], patch_size=p, **layer),
        head=dict(patch_size=p, kernel_size=arch['kernel_size'],
                  sigma=None if arch['sigma'] is None else round(arch['sigma'], 6)))


# --------------------------------------------------------------------------------- saim_mm <-> timm
def mm_to_timm(encoder: StateDict) -> StateDict:
    """mmpretrain-layout ViT encoder (no prefix, with final norm ``ln1``) -> timm ``VisionTransformer``.

    The result loads into ``timm.create_model('vit_base_patch16_224', num_classes=0)`` (for ViT-B/16)
    with ``strict=True``; tensors are the same objects, only renamed.

    Raises:
        ConversionError: not a complete mmpretrain ViT with a final norm.
    """
    arch = mm_vit_arch(encoder)
    check_state_dict(encoder, vit_shapes(**arch, final_norm=True), 'saim_mm encoder (with final norm ln1)')
    out = {'cls_token': encoder['cls_token'], 'pos_embed': encoder['pos_embed'],
           'patch_embed.proj.weight': encoder['patch_embed.projection.weight'],
           'patch_embed.proj.bias': encoder['patch_embed.projection.bias'],
           'norm.weight': encoder['ln1.weight'], 'norm.bias': encoder['ln1.bias']}
    for i in range(arch['depth']):
        for theirs, ours in BLOCK_RENAMES + (('attn.qkv', 'attn.qkv'), ):
            for part in ('weight', 'bias'):
                out[f'blocks.{i}.{theirs}.{part}'] = encoder[f'layers.{i}.{ours}.{part}']
    return out


def timm_to_mm(state_dict: StateDict) -> Tuple[StateDict, ConversionReport]:
    """timm ``VisionTransformer`` (cls token, qkv bias) -> mmpretrain-layout encoder (no prefix).

    The classifier ``head.*`` is reported as dropped; any other key timm's plain ViT does not have (e.g.
    ``fc_norm`` of average-pooling models, register tokens, layer scale) is an error.
    """
    report = ConversionReport()
    sd = dict(state_dict)
    for key in ('head.weight', 'head.bias'):
        if key in sd:
            report.dropped.append((key, tuple(sd.pop(key).shape)))
    _require(sd, ['cls_token', 'pos_embed', 'patch_embed.proj.weight', 'norm.weight', 'blocks.0.mlp.fc1.weight'],
             'timm ViT state dict')
    out = {'cls_token': sd['cls_token'], 'pos_embed': sd['pos_embed'],
           'patch_embed.projection.weight': sd['patch_embed.proj.weight'],
           'patch_embed.projection.bias': sd.get('patch_embed.proj.bias'),
           'ln1.weight': sd['norm.weight'], 'ln1.bias': sd.get('norm.bias')}
    used = {'cls_token', 'pos_embed', 'patch_embed.proj.weight', 'patch_embed.proj.bias', 'norm.weight',
            'norm.bias'}
    depth = _num_blocks(sd, 'blocks.')
    for i in range(depth):
        for theirs, ours in BLOCK_RENAMES + (('attn.qkv', 'attn.qkv'), ):
            for part in ('weight', 'bias'):
                key = f'blocks.{i}.{theirs}.{part}'
                out[f'layers.{i}.{ours}.{part}'] = sd.get(key)
                used.add(key)
    absent = [k for k, v in out.items() if v is None]
    unexpected = [f'{k} {list(v.shape)}' for k, v in sd.items() if k not in used]
    if absent or unexpected:
        raise ConversionError('timm ViT state dict does not fit the plain ViT layout: '
                              f'missing (in mmpretrain names) {absent[:12]}, unexpected {unexpected[:12]}.')
    arch = mm_vit_arch(out)
    check_state_dict(out, vit_shapes(**arch), 'converted timm ViT')
    report.arch = arch
    return out, report
