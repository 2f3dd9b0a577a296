"""Renaming between the ViT layouts saim_mm reads (mmpretrain's names, timm's :data:`TOP` / :data:`BLOCK`,
the authors' = timm's with separate ``attn.q/k/v``, plus a decoder in pre-training). Tensors are renamed (q, k,
v concatenated), never changed; results are compared with an mmpretrain ViT built on the meta device.
"""
import math
import re
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Tuple

import torch
from mmpretrain.models import VisionTransformer

from .errors import ConversionError
from .io import StateDict, strip_prefix

TOP = {'cls_token': 'cls_token', 'pos_embed': 'pos_embed', 'patch_embed.proj.weight': 'patch_embed.projection.weight',
       'patch_embed.proj.bias': 'patch_embed.projection.bias', 'norm.weight': 'ln1.weight', 'norm.bias': 'ln1.bias'}
BLOCK = {'norm1': 'ln1', 'attn.qkv': 'attn.qkv', 'attn.proj': 'attn.proj', 'norm2': 'ln2', 'mlp.fc1': 'ffn.layers.0.0',
         'mlp.fc2': 'ffn.layers.1'}
AUTHORS = "authors' SAIM checkpoint"


@dataclass
class ConversionReport:
    """What a conversion dropped (key, shape), added (key, reason), the checkpoint's other entries, the arch."""
    dropped: List[Tuple[str, tuple]] = field(default_factory=list)
    added: List[Tuple[str, str]] = field(default_factory=list)
    other_entries: List[str] = field(default_factory=list)
    arch: dict = field(default_factory=dict)

    def lines(self) -> List[str]:
        """Human-readable summary, one line per fact."""
        out = ([f'architecture: {self.arch}'] if self.arch else []) + (
            [f'dropped checkpoint entries: {", ".join(self.other_entries)}'] if self.other_entries else [])
        for top in dict.fromkeys(k.split('.')[0] for k, _ in self.dropped):
            group = [f'{k} {list(s)}' for k, s in self.dropped if k.split('.')[0] == top]
            more = ', ...' if len(group) > 3 else ''
            out.append(f'dropped {len(group)} tensor(s) under {top!r}: {", ".join(group[:3])}{more}')
        return out + [f'added {key}: {why}' for key, why in self.added]


def require_keys(state_dict: Mapping, keys: List[str], what: str) -> None:
    """Raise :class:`ConversionError` naming the ``keys`` that ``state_dict`` lacks, if any."""
    if any(k not in state_dict for k in keys):
        raise ConversionError(f'{what}: missing keys {[k for k in keys if k not in state_dict]}; the file has e.g. '
                              f'{sorted(state_dict)[:8]}. Is it the right kind of checkpoint?')


def num_blocks(state_dict: Mapping, prefix: str) -> int:
    """Number of blocks ``{prefix}N.*`` (the highest ``N`` plus one; 0 if there are none)."""
    found = (int(m[1]) for m in (re.match(re.escape(prefix) + r'(\d+)\.', k) for k in state_dict) if m)
    return 1 + max(found, default=-1)


def check_state_dict(state_dict: Mapping, expected: Mapping[str, Optional[tuple]], what: str,
                     optional=()) -> None:
    """Raise :class:`ConversionError` naming missing (not ``optional``) and unexpected keys and shape mismatches
    unless ``state_dict`` has the keys and shapes of ``expected`` (a None shape: any)."""
    sizes = {k: tuple(v.shape) for k, v in state_dict.items()}
    problems = {'missing keys': [f'{k} {list(s or ())}' for k, s in expected.items() if k not in {*sizes, *optional}],
                'unexpected keys': [f'{k} {list(s)}' for k, s in sizes.items() if k not in expected],
                'shape mismatches': [f'{k}: got {list(s)}, expected {list(expected[k])}' for k, s in sizes.items()
                                     if expected.get(k) not in (None, s)]}
    parts = [f'{name}: ' + ', '.join(items[:12]) + (f' ... ({len(items)} in all)' if len(items) > 12 else '')
             for name, items in problems.items() if items]
    if parts:
        raise ConversionError('\n  '.join([f'{what} does not fit:'] + parts))


def vit_arch(encoder: Mapping, what: str = 'encoder') -> dict:
    """The architecture of an mmpretrain-layout ViT state dict (no prefix)."""
    require_keys(encoder, ['cls_token', 'pos_embed', 'patch_embed.projection.weight', 'layers.0.ffn.layers.0.0.weight'],
                 what)
    w = encoder['patch_embed.projection.weight']
    return dict(embed_dims=w.shape[0], depth=num_blocks(encoder, 'layers.'), patch_size=w.shape[-1],
                hidden=encoder['layers.0.ffn.layers.0.0.weight'].shape[0], in_channels=w.shape[1],
                num_tokens=encoder['pos_embed'].shape[1])


def check_vit(encoder: Mapping, what: str, final_norm: Optional[bool] = None) -> Dict[str, tuple]:
    """Compare ``encoder`` with the mmpretrain ViT its weights imply (on the meta device); returns its shapes."""
    a = vit_arch(encoder, what)
    p = a['patch_size']
    with torch.device('meta'):  # a 1 x (N - 1) patch grid: any token count; num_heads changes no shape
        vit = VisionTransformer(dict(embed_dims=a['embed_dims'], num_layers=a['depth'], num_heads=1,
                                     feedforward_channels=a['hidden']), img_size=(p, p * (a['num_tokens'] - 1)),
                                patch_size=p, in_channels=a['in_channels'], out_type='raw',
                                final_norm='ln1.weight' in encoder if final_norm is None else final_norm)
    shapes = {k: tuple(v.shape) for k, v in vit.state_dict().items()}
    check_state_dict(encoder, shapes, what)
    return shapes


def _rename(state_dict: Mapping, top: dict, block: dict, src: str, dst: str, what: str) -> StateDict:
    """Keys renamed by ``top`` and, in blocks ``{src}.N.``, by ``block``; a key neither knows is an error."""
    names = {k: top.get(k) or ((m := re.fullmatch(rf'{src}\.(\d+)\.(.+)\.(weight|bias)', k)) and m[2] in block
                                and f'{dst}.{m[1]}.{block[m[2]]}.{m[3]}') for k in state_dict}
    unknown = [f'{k} {list(state_dict[k].shape)}' for k, name in names.items() if not name]
    if unknown:
        raise ConversionError(f'{what} does not fit the plain ViT layout: unexpected keys: {", ".join(unknown[:12])}')
    return {names[k]: v for k, v in state_dict.items()}


def timm_to_mm(state_dict: Mapping) -> Tuple[StateDict, ConversionReport]:
    """timm ``VisionTransformer`` -> mmpretrain-layout encoder; ``head.*`` is dropped, other strangers refused."""
    report = ConversionReport(sorted((k, tuple(v.shape)) for k, v in state_dict.items() if k.startswith('head.')))
    encoder = _rename({k: v for k, v in state_dict.items() if not k.startswith('head.')}, TOP, BLOCK, 'blocks',
                      'layers', 'timm ViT state dict')
    check_vit(encoder, 'converted timm ViT')
    report.arch = vit_arch(encoder)
    return encoder, report


def mm_to_timm(encoder: Mapping) -> StateDict:
    """mmpretrain-layout encoder (no prefix, final norm ``ln1``) -> timm ``VisionTransformer`` names."""
    check_vit(encoder, 'saim_mm encoder (with final norm ln1)', final_norm=True)
    return _rename(encoder, {v: k for k, v in TOP.items()}, {v: k for k, v in BLOCK.items()}, 'layers', 'blocks',
                   'saim_mm encoder')


def extract_backbone(state_dict: Mapping, prefix: str = 'backbone.') -> Tuple[StateDict, ConversionReport]:
    """The complete ViT under ``prefix`` of a saim_mm checkpoint (prefix kept); the rest is reported dropped."""
    backbone = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
    if not backbone:
        tops = sorted({k.split('.')[0] for k in state_dict})
        raise ConversionError(f'no keys under {prefix!r} (top-level names: {tops}); expected a saim_mm checkpoint '
                              '(SAIM pre-training or a classifier).')
    check_vit(backbone, f'{prefix[:-1]} encoder')
    report = ConversionReport([(k, tuple(v.shape)) for k, v in state_dict.items() if not k.startswith(prefix)],
                              arch=vit_arch(backbone))
    return {prefix + k: v for k, v in backbone.items()}, report


def fuse_qkv(state_dict: Mapping) -> StateDict:
    """The authors' ``attn.q/k/v`` concatenated into timm's ``attn.qkv``: their fine-tuned ViTs are timm's."""
    out, state_dict = {}, strip_prefix(state_dict, 'module.')
    for key, value in state_dict.items():
        m = re.fullmatch(r'(.*\.attn\.)([qkv])\.(weight|bias)', key)
        if not m:
            out[key] = value
        elif m[2] == 'q':
            parts = [f'{m[1]}{n}.{m[3]}' for n in 'qkv']
            require_keys(state_dict, parts, AUTHORS)
            out[f'{m[1]}qkv.{m[3]}'] = torch.cat([state_dict[p] for p in parts])
    return out


def gaussian_from_kernel(kernel: torch.Tensor) -> Tuple[int, float]:
    """Kernel size and sigma of a (C, 1, k, k) Gaussian kernel such as the authors' ``gaussian_blur.weight``."""
    k, c = kernel.shape[-1], kernel.shape[-1] // 2  # kernel[c, c + 1] / kernel[c, c] = exp(-1 / (2 sigma^2))
    return k, math.sqrt(-0.5 / math.log(float(kernel[0, 0, c, c + 1] / kernel[0, 0, c, c]))) if k >= 3 else math.nan


def official_saim_to_mm(state_dict: Mapping, query_depth: Optional[int] = None) -> Tuple[StateDict, ConversionReport]:
    """The authors' SAIM pre-training model -> ``backbone.*`` / ``neck.*`` (identity final encoder norm added)
    and a report whose ``arch`` is what :func:`saim_model_cfg` takes. ``query_depth``: decoder depth of a
    shared-weight decoder (its file repeats every block under ``query_blocks``); default: the encoder depth."""
    sd = fuse_qkv(state_dict)
    require_keys(sd, ['norm.weight', 'norm.bias'], AUTHORS)
    depth, num_query = num_blocks(sd, 'blocks.'), num_blocks(sd, 'query_blocks.')
    if not num_query:
        raise ConversionError('authors\' SAIM checkpoint has no query_blocks.N.* (decoder) keys.')
    query = {k[len('query_'):]: sd.pop(k) for k in list(sd) if k.startswith('query_blocks.')}
    shared = num_query == depth and all(k in sd and torch.equal(v, sd[k]) for k, v in query.items())
    report, kernel = ConversionReport(), sd.pop('gaussian_blur.weight', None)  # saim_mm's head computes it
    decoder = {'neck.ln.' + k[5:]: sd.pop(k) for k in ('norm.weight', 'norm.bias')}
    decoder.update({'neck.predictor.' + k[16:]: sd.pop(k) for k in list(sd) if k.startswith('prediction_head.')})
    encoder = _rename(sd, TOP, BLOCK, 'blocks', 'layers', AUTHORS)
    like = encoder.get('cls_token', torch.zeros(0)).flatten()  # their encoder has no final norm: the identity
    encoder['ln1.weight'], encoder['ln1.bias'] = torch.ones_like(like), torch.zeros_like(like)
    report.added = [(f'backbone.ln1.{p}', f'{v} (final encoder norm; not in their pre-training model)')
                    for p, v in (('weight', 'ones'), ('bias', 'zeros'))]
    shapes = check_vit(encoder, f'converted {AUTHORS}')
    if depth % (dec_depth := (query_depth or depth) if shared else num_query):
        raise ConversionError(f'a decoder of {dec_depth} blocks does not divide the encoder depth {depth}.')
    if shared:
        report.dropped += [('query_' + k, tuple(v.shape)) for k, v in query.items()]
    else:
        decoder.update({'neck.' + k: v for k, v in _rename(query, {}, BLOCK, 'blocks', 'layers', AUTHORS).items()})
        check_state_dict({k: v for k, v in decoder.items() if k.startswith('neck.layers.')}, {
            f'neck.layers.{j}.{k[9:]}': s for k, s in shapes.items() if k.startswith('layers.0.')
            for j in range(dec_depth)}, f'converted {AUTHORS} (decoder)')
    report.arch = dict(vit_arch(encoder), query_depth=dec_depth, share_encoder_weights=shared, kernel_size=None,
                       sigma=None, predictor='mlp' if 'neck.predictor.fc1.weight' in decoder else 'linear')
    if kernel is not None:
        report.arch['kernel_size'], report.arch['sigma'] = gaussian_from_kernel(kernel)
        report.dropped.append(('gaussian_blur.weight', tuple(kernel.shape)))
    return {**{'backbone.' + k: v for k, v in encoder.items()}, **decoder}, report
