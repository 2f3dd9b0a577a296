"""saim_mm (mmpretrain-layout) ViT encoder <-> timm ``VisionTransformer`` (e.g. ``vit_base_patch16_224``).

timm's names: ``patch_embed.proj``, ``cls_token``, ``pos_embed``, ``blocks.N.{norm1, attn.qkv, attn.proj,
norm2, mlp.fc1, mlp.fc2}``, ``norm``, ``head``. Tensors are renamed, never changed.
"""
from typing import List, Tuple

from .errors import ConversionError
from .report import ConversionReport
from .schema import (BLOCK_RENAMES, EMBED_RENAMES, StateDict, check_state_dict, mm_vit_arch, num_blocks,
                     require_keys, vit_shapes)


def _timm_mm_keys(depth: int) -> List[Tuple[str, str]]:
    """Every (timm key, mmpretrain key) pair of a ``depth``-block ViT with a final norm."""
    pairs = list(EMBED_RENAMES) + [('norm.weight', 'ln1.weight'), ('norm.bias', 'ln1.bias')]
    for i in range(depth):
        for theirs, ours in BLOCK_RENAMES + (('attn.qkv', 'attn.qkv'), ):
            for part in ('weight', 'bias'):
                pairs.append((f'blocks.{i}.{theirs}.{part}', f'layers.{i}.{ours}.{part}'))
    return pairs


def mm_to_timm(encoder: StateDict) -> StateDict:
    """mmpretrain-layout ViT encoder (no prefix, with final norm ``ln1``) -> timm ``VisionTransformer``.

    The result loads into ``timm.create_model('vit_base_patch16_224', num_classes=0)`` (for ViT-B/16)
    with ``strict=True``; tensors are the same objects, only renamed.

    Raises:
        ConversionError: not a complete mmpretrain ViT with a final norm.
    """
    arch = mm_vit_arch(encoder)
    check_state_dict(encoder, vit_shapes(**arch, final_norm=True), 'saim_mm encoder (with final norm ln1)')
    return {theirs: encoder[ours] for theirs, ours in _timm_mm_keys(arch['depth'])}


def timm_to_mm(state_dict: StateDict) -> Tuple[StateDict, ConversionReport]:
    """timm ``VisionTransformer`` (cls token, qkv bias) -> mmpretrain-layout encoder (no prefix).

    The classifier ``head.*`` is reported as dropped; any other key timm's plain ViT does not have (e.g.
    ``fc_norm`` of average-pooling models, register tokens, layer scale) is an error.

    Raises:
        ConversionError: a missing or unexpected key, or shapes that do not form a ViT.
    """
    report = ConversionReport()
    sd = dict(state_dict)
    for key in ('head.weight', 'head.bias'):
        if key in sd:
            report.dropped.append((key, tuple(sd.pop(key).shape)))
    require_keys(sd, ['cls_token', 'pos_embed', 'patch_embed.proj.weight', 'norm.weight', 'blocks.0.mlp.fc1.weight'],
                 'timm ViT state dict')
    pairs = _timm_mm_keys(num_blocks(sd, 'blocks.'))
    out = {ours: sd.get(theirs) for theirs, ours in pairs}
    used = {theirs for theirs, _ in pairs}
    absent = [k for k, v in out.items() if v is None]
    unexpected = [f'{k} {list(v.shape)}' for k, v in sd.items() if k not in used]
    if absent or unexpected:
        raise ConversionError('timm ViT state dict does not fit the plain ViT layout: '
                              f'missing (in mmpretrain names) {absent[:12]}, unexpected {unexpected[:12]}.')
    arch = mm_vit_arch(out)
    check_state_dict(out, vit_shapes(**arch), 'converted timm ViT')
    report.arch = arch
    return out, report
