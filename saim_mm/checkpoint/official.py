"""The authors' SAIM release (repository qiy20/SAIM) -> saim_mm state dicts.

Their pre-training model (``SaimViT``): ``patch_embed.proj``, ``cls_token``, ``pos_embed``, ``blocks.N.{norm1,
attn.q, attn.k, attn.v, attn.proj, norm2, mlp.fc1, mlp.fc2}``, ``query_blocks.N.*`` (the same block layout),
``norm`` and ``prediction_head.{fc1, fc2}`` (MLP) or ``prediction_head`` (linear) of the decoder, the
Gaussian kernel ``gaussian_blur.weight``; no final encoder norm (:func:`official_saim_to_mm`).

Their fine-tuned and linear-probe models (``models_vit.VisionTransformer``) have the same encoder blocks, no
query stream, ``norm`` as the encoder's final norm and a classifier ``head`` (:func:`official_encoder_to_mm`).
"""
import math
from typing import Optional, Set, Tuple

import torch
from torch import Tensor

from .errors import ConversionError
from .report import ConversionReport
from .schema import (BLOCK_RENAMES, EMBED_RENAMES, StateDict, check_state_dict, num_blocks, require_keys,
                     saim_decoder_shapes, strip_prefix, vit_shapes)

WHAT = 'authors\' SAIM checkpoint'
ENCODER_KEYS = ['cls_token', 'pos_embed', 'patch_embed.proj.weight', 'patch_embed.proj.bias', 'blocks.0.mlp.fc1.weight']


def _authors_block(state_dict: StateDict, src: str, dst: str, out: StateDict, used: Set[str]) -> None:
    """One authors' block ``src`` (``blocks.N.``) -> mmpretrain block ``dst``; q, k, v fused into qkv."""
    for part in ('weight', 'bias'):
        keys = [f'{src}attn.{n}.{part}' for n in 'qkv']
        require_keys(state_dict, keys, WHAT)
        out[f'{dst}attn.qkv.{part}'] = torch.cat([state_dict[k] for k in keys], dim=0)
        used.update(keys)
    for theirs, ours in BLOCK_RENAMES:
        for part in ('weight', 'bias'):
            key = f'{src}{theirs}.{part}'
            require_keys(state_dict, [key], WHAT)
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
    require_keys(sd, ENCODER_KEYS + ['norm.weight'], WHAT)
    out: StateDict = {}
    used: Set[str] = set()
    report = ConversionReport()
    depth, C = _authors_encoder(sd, out, used, report, final_norm=False)

    num_query = num_blocks(sd, 'query_blocks.')
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
    require_keys(sd, [f'prediction_head.{n}' for n in names], WHAT)
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
    _check_all_used(sd, used)
    expected = _encoder_shapes(arch)
    expected.update(saim_decoder_shapes(C, arch['hidden'], arch['patch_size'], arch['in_channels'],
                                        num_layers=0 if shared else dec_depth, predictor=predictor))
    check_state_dict(out, expected, 'converted authors\' SAIM checkpoint')
    report.arch = arch
    return out, report


def official_encoder_to_mm(state_dict: StateDict) -> Tuple[StateDict, ConversionReport]:
    """The authors' fine-tuned or linear-probe ViT (no query stream) -> a saim_mm encoder under ``backbone.``.

    Their ``norm`` is this model's final encoder norm (``backbone.ln1``); the classifier ``head.*`` (a
    Linear, or BatchNorm + Linear in their probe) is reported as dropped. A pre-training checkpoint (with
    ``query_blocks``) is read by :func:`official_saim_to_mm` instead.

    Raises:
        ConversionError: ``query_blocks`` keys, a missing or unexpected key, or shapes that do not form a ViT.
    """
    sd = strip_prefix(state_dict, 'module.')
    if num_blocks(sd, 'query_blocks.'):
        raise ConversionError('authors\' checkpoint has query_blocks.N.* (a pre-training model): read it with '
                              'official_saim_to_mm.')
    out: StateDict = {}
    used: Set[str] = set()
    report = ConversionReport()
    depth, _ = _authors_encoder(sd, out, used, report, final_norm='norm.weight' in sd)
    for key in sorted(k for k in sd if k.startswith('head.')):
        report.dropped.append((key, tuple(sd[key].shape)))
        used.add(key)
    _check_all_used(sd, used)
    patch_w = sd['patch_embed.proj.weight']
    arch = dict(embed_dims=patch_w.shape[0], depth=depth, hidden=sd['blocks.0.mlp.fc1.weight'].shape[0],
                patch_size=patch_w.shape[-1], in_channels=patch_w.shape[1], num_tokens=sd['pos_embed'].shape[1])
    check_state_dict(out, _encoder_shapes(arch), 'converted authors\' ViT checkpoint')
    report.arch = arch
    return out, report


def _authors_encoder(sd: StateDict, out: StateDict, used: Set[str], report: ConversionReport,
                     final_norm: bool) -> Tuple[int, int]:
    """Their embeddings and ``blocks.N`` -> ``backbone.*`` in ``out``; returns (depth, width).

    ``final_norm``: their ``norm`` is the encoder's final norm (fine-tuned models). Otherwise (pre-training,
    where ``norm`` is the decoder's) the final norm ``backbone.ln1`` is the identity.
    """
    require_keys(sd, ENCODER_KEYS, WHAT)
    for theirs, ours in EMBED_RENAMES:
        out['backbone.' + ours] = sd[theirs]
        used.add(theirs)
    depth = num_blocks(sd, 'blocks.')
    for i in range(depth):
        _authors_block(sd, f'blocks.{i}.', f'backbone.layers.{i}.', out, used)
    C = sd['cls_token'].shape[-1]
    if final_norm:
        require_keys(sd, ['norm.weight', 'norm.bias'], WHAT)
        out['backbone.ln1.weight'], out['backbone.ln1.bias'] = sd['norm.weight'], sd['norm.bias']
        used.update(('norm.weight', 'norm.bias'))
        return depth, C
    # Their pre-training model has no final encoder norm (the decoder has its own); mmpretrain's ViT has
    # one (``ln1``), frozen at the identity in saim_mm pre-training. The same identity here.
    dtype = sd['cls_token'].dtype
    out['backbone.ln1.weight'] = torch.ones(C, dtype=dtype)
    out['backbone.ln1.bias'] = torch.zeros(C, dtype=dtype)
    report.added += [('backbone.ln1.weight', 'ones (final encoder norm; not in their pre-training model)'),
                     ('backbone.ln1.bias', 'zeros (final encoder norm; not in their pre-training model)')]
    return depth, C


def _check_all_used(sd: StateDict, used: Set[str]) -> None:
    """Raise :class:`ConversionError` naming the keys of ``sd`` that no rule converted."""
    unexpected = [f'{k} {list(v.shape)}' for k, v in sd.items() if k not in used]
    if unexpected:
        raise ConversionError(f'authors\' SAIM checkpoint has unexpected keys: {", ".join(unexpected[:12])}'
                              f'{" ..." if len(unexpected) > 12 else ""}')


def _encoder_shapes(arch: dict) -> dict:
    """Keys (under ``backbone.``) and shapes of the encoder that ``arch`` describes."""
    return {'backbone.' + k: s for k, s in vit_shapes(arch['embed_dims'], arch['depth'], arch['hidden'],
                                                      arch['patch_size'], arch['in_channels'],
                                                      arch['num_tokens']).items()}


def saim_model_cfg(arch: dict, num_heads: int) -> dict:
    """``model`` overrides for a config inheriting ``configs/_base_/models/saim_vit-base-p16.py``, as they are.

    The encoder's ``arch`` replaces the base's ``'b'`` (``_delete_=True``); the decoder's width, heads, MLP
    width and patch size are left to default to the encoder's.

    Args:
        arch (dict): ``report.arch`` of :func:`official_saim_to_mm`.
        num_heads (int): attention heads (not stored in the weights).
    """
    C, p = arch['embed_dims'], arch['patch_size']
    side = int(round(math.sqrt(arch['num_tokens'] - 1)))
    encoder = dict(_delete_=True, embed_dims=C, num_layers=arch['depth'], num_heads=num_heads,
                   feedforward_channels=arch['hidden'])
    return dict(
        backbone=dict(arch=encoder, img_size=side * p, patch_size=p),
        neck=dict(num_layers=arch['query_depth'], share_encoder_weights=arch['share_encoder_weights'],
                  predictor=arch['predictor']),
        head=dict(patch_size=p, kernel_size=arch['kernel_size'],
                  sigma=None if arch['sigma'] is None else round(arch['sigma'], 6)))
