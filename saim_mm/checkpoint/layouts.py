"""Which layout a checkpoint has, read from its keys, and its conversion into saim_mm's, in memory.

The layouts, in the order they are tried (``module.`` of DistributedDataParallel is ignored), and the keys
that identify them:

- ``saim_mm``: a saim_mm ``SAIM`` (encoder ``backbone.*``, decoder ``neck.*``):
  ``backbone.patch_embed.projection.weight`` and ``neck.predictor.*``;
- ``backbone``: a saim_mm / mmpretrain ViT under ``backbone.*`` (the output of ``saim2backbone.py``, or
  any model built on the encoder): ``backbone.patch_embed.projection.weight``;
- ``encoder``: an mmpretrain ViT without prefix: ``patch_embed.projection.weight`` and ``layers.0.*``;
- ``authors``: the authors' release (qiy20/SAIM; pre-training, fine-tuned or probed model):
  ``blocks.0.attn.q.weight``;
- ``timm``: a timm ``VisionTransformer`` (``.pth`` or ``.safetensors``): ``patch_embed.proj.weight`` and
  ``blocks.0.attn.qkv.weight``.

The first two are saim_mm's own and load as they are; the others are converted by the converters'
functions (:func:`.official_saim_to_mm`, :func:`.official_encoder_to_mm`, :func:`.timm_to_mm`,
:func:`.extract_backbone`) into the first two.

:func:`load_any_layout` is the loader mmengine uses for every local path (``load_from``, ``resume``,
``init_cfg=dict(type='Pretrained')``, ``mmpretrain.get_model(..., pretrained=PATH)``, the tools); it logs
one line naming the layout and what the conversion dropped or added. It serves every model, so a file of
another kind (a ResNet, a detector) passes through as before, except where the loader is told that a ViT
encoder or a SAIM model is being loaded (:func:`loading_into`, used by :class:`.LayoutPretrainedInit`):
there a file that fits none of the layouts is refused with the layouts it was compared against.
"""
import argparse
import contextlib
import dataclasses
from contextvars import ContextVar
from typing import Any, Callable, Collection, Iterator, Optional, Tuple

import torch
from mmengine.logging import print_log

from .backbone import extract_backbone
from .errors import ConversionError
from .io import CONTAINER_KEYS, MapLocation, load_checkpoint_file, load_safetensors_file
from .official import official_encoder_to_mm, official_saim_to_mm
from .report import ConversionReport
from .schema import StateDict, num_blocks, strip_prefix
from .timm import timm_to_mm

TARGETS = ('model', 'backbone')  # what a state dict is converted for: a whole SAIM model, or its encoder
Converter = Callable[[StateDict, str, Optional[int]], Tuple[StateDict, ConversionReport]]


def _from_encoder(state_dict: StateDict, target: str, query_depth: Optional[int]) -> Tuple[StateDict,
                                                                                          ConversionReport]:
    return extract_backbone({'backbone.' + k: v for k, v in state_dict.items()})


def _from_authors(state_dict: StateDict, target: str,
                  query_depth: Optional[int]) -> Tuple[StateDict, ConversionReport]:
    if not num_blocks(state_dict, 'query_blocks.'):  # their fine-tuned / probed ViT: an encoder only
        return official_encoder_to_mm(state_dict)
    converted, report = official_saim_to_mm(state_dict, query_depth=query_depth)
    if target == 'backbone':  # the decoder is converted (and so checked), then left out
        converted, encoder_report = extract_backbone(converted)
        report.dropped += encoder_report.dropped
    return converted, report


def _from_timm(state_dict: StateDict, target: str, query_depth: Optional[int]) -> Tuple[StateDict,
                                                                                       ConversionReport]:
    encoder, report = timm_to_mm(state_dict)
    return {'backbone.' + k: v for k, v in encoder.items()}, report


@dataclasses.dataclass(frozen=True)
class Layout:
    """A checkpoint layout.

    Attributes:
        name (str): Short name (logs, ``meta['layout']`` of a converted checkpoint).
        description (str): What it is, in words.
        signature (tuple[str]): Keys that identify it; one ending in ``.`` stands for any key under it.
        convert (callable, optional): ``(state_dict, target, query_depth) -> (state_dict, report)`` into
            saim_mm's layout; None for saim_mm's own layouts.
    """
    name: str
    description: str
    signature: Tuple[str, ...]
    convert: Optional[Converter] = None

    def matches(self, keys: Collection[str]) -> bool:
        """Whether ``keys`` (a state dict's, without ``module.``) have this layout's signature."""
        return all(any(k.startswith(s) for k in keys) if s.endswith('.') else s in keys for s in self.signature)

    @property
    def native(self) -> bool:
        """saim_mm's own layout: loaded as it is."""
        return self.convert is None


LAYOUTS = (
    Layout('saim_mm', 'saim_mm SAIM checkpoint (encoder backbone.*, decoder neck.*)',
           ('backbone.patch_embed.projection.weight', 'neck.predictor.')),
    Layout('backbone', 'saim_mm / mmpretrain ViT encoder under backbone.*',
           ('backbone.patch_embed.projection.weight', )),
    Layout('encoder', 'mmpretrain ViT encoder without prefix', ('patch_embed.projection.weight', 'layers.0.'),
           _from_encoder),
    Layout('authors', "the authors' SAIM release (qiy20/SAIM)", ('blocks.0.attn.q.weight', ), _from_authors),
    Layout('timm', 'timm VisionTransformer', ('patch_embed.proj.weight', 'blocks.0.attn.qkv.weight'), _from_timm),
)


def layouts_tried() -> str:
    """Every layout with the keys that identify it, for error messages."""
    def keys(layout: Layout) -> str:
        return ', '.join(s + '*' if s.endswith('.') else s for s in layout.signature)

    return '; '.join(f'{layout.name} = {layout.description} (keys {keys(layout)})' for layout in LAYOUTS)


def detect_layout(state_dict: StateDict, what: str = 'state dict') -> Layout:
    """The layout of ``state_dict`` (the first of :data:`LAYOUTS` whose signature its keys have).

    Raises:
        ConversionError: it fits none; the message lists every layout and the keys it was looked for by.
    """
    keys = set(strip_prefix(state_dict, 'module.'))
    for layout in LAYOUTS:
        if layout.matches(keys):
            return layout
    raise ConversionError(f'{what} fits none of the checkpoint layouts saim_mm reads: {layouts_tried()}. '
                          f'It has {len(keys)} keys, e.g. {sorted(keys)[:6]}.')


def to_saim_mm(state_dict: StateDict, target: str = 'model',
               query_depth: Optional[int] = None) -> Tuple[StateDict, ConversionReport, Layout]:
    """``state_dict`` in any layout of :data:`LAYOUTS` -> saim_mm's layout.

    Args:
        state_dict (dict): The weights (``module.`` prefixes allowed).
        target (str): ``'model'``: everything the file holds for a saim_mm ``SAIM`` (encoder ``backbone.*``
            and, where the file has one, decoder ``neck.*``); ``'backbone'``: the encoder ``backbone.*`` only
            (what fine-tuning, probing, mmdet and mmseg load, with ``prefix='backbone.'``). The authors'
            decoder is needed, and checked, only for ``'model'``.
        query_depth (int, optional): Decoder depth of an authors' shared-weight model (not in its weights).

    Returns:
        tuple: the converted state dict, the :class:`ConversionReport` (what was dropped or added) and the
        :class:`Layout` found. saim_mm's own layouts come back unchanged for ``'model'``; for ``'backbone'``
        they go through :func:`.extract_backbone`.

    Raises:
        ConversionError: a file that fits no layout, or one whose keys and shapes do not fit its layout.
    """
    if target not in TARGETS:
        raise ValueError(f'target must be one of {TARGETS}, got {target!r}.')
    layout = detect_layout(state_dict)
    state_dict = strip_prefix(state_dict, 'module.')
    if not layout.native:
        converted, report = layout.convert(state_dict, target, query_depth)
    elif target == 'backbone':
        converted, report = extract_backbone(state_dict)
    else:
        converted, report = dict(state_dict), ConversionReport()
    return converted, report, layout


_TARGET: ContextVar[Optional[str]] = ContextVar('saim_mm_checkpoint_target', default=None)


@contextlib.contextmanager
def loading_into(target: Optional[str]) -> Iterator[None]:
    """Tell :func:`load_any_layout` what the checkpoints loaded in this block are for (see :data:`TARGETS`).

    Inside, a file that fits no layout is refused, and an authors' pre-training file is reported with its
    decoder dropped when ``target='backbone'``.
    """
    if target is not None and target not in TARGETS:
        raise ValueError(f'target must be one of {TARGETS} or None, got {target!r}.')
    token = _TARGET.set(target)
    try:
        yield
    finally:
        _TARGET.reset(token)


def _summary(report: ConversionReport) -> str:
    lines = dataclasses.replace(report, arch={}).lines()
    return '; '.join(lines) if lines else 'renamed only'


def load_any_layout(filename: str, map_location: MapLocation = None) -> Any:
    """Read a local checkpoint (weights-only, or ``.safetensors``) and bring known layouts into saim_mm's.

    Args:
        filename (str): ``.pth`` / ``.pt`` / ``.bin`` written by ``torch.save``, or ``.safetensors``.
        map_location: As for :func:`torch.load`.

    Returns:
        The checkpoint as mmengine expects it: unchanged for saim_mm's own layouts and for files of other
        models; ``{'state_dict': converted, 'meta': {'layout', 'converted_from'}}`` for a converted one.

    Raises:
        CheckpointError: the file cannot be read (see :func:`.load_checkpoint_file`); it fits no layout
            while a ViT or SAIM model is being loaded (:func:`loading_into`); or it has a layout's keys but
            does not fit it (the converters' errors, naming keys and shapes).
    """
    if filename.endswith('.safetensors'):
        checkpoint = {'state_dict': load_safetensors_file(filename)}
    else:
        # argparse.Namespace: the ``args`` entry of the authors' checkpoints (plain data)
        with torch.serialization.safe_globals([argparse.Namespace]):
            checkpoint = load_checkpoint_file(filename, map_location=map_location)
    target = _TARGET.get()
    entry = next((k for k in CONTAINER_KEYS if isinstance(checkpoint, dict)
                  and isinstance(checkpoint.get(k), dict)), None)
    weights = checkpoint[entry] if entry else checkpoint
    tensors = {k: v for k, v in weights.items() if isinstance(v, torch.Tensor)} if isinstance(weights, dict) else {}
    try:
        layout = detect_layout(tensors, what=f'Checkpoint {filename}')
    except ConversionError:
        if target is None:  # another model's checkpoint: mmengine loads it as before
            return checkpoint
        raise
    if layout.native:
        unused = sorted({k.split('.')[0] for k in tensors if not k.startswith('backbone.')})
        note = f' (the encoder takes backbone.*; {", ".join(unused)} not used)' if target == 'backbone' and \
            unused else ''
        print_log(f'Checkpoint {filename}: layout {layout.name} ({layout.description}), loaded as it is{note}',
                  logger='current')
        return checkpoint
    try:
        converted, report, _ = to_saim_mm(tensors, target or 'model')
    except ConversionError as err:
        raise ConversionError(f'Checkpoint {filename} has the keys of layout {layout.name} ({layout.description}) '
                              f'but does not fit it: {err}') from None
    others = [k for k in checkpoint if k != entry] if entry else []
    if others:
        report.other_entries = others
    print_log(f'Checkpoint {filename}: layout {layout.name} ({layout.description}), converted to saim_mm\'s '
              f'layout in memory: {_summary(report)}', logger='current')
    return {'state_dict': converted, 'meta': dict(layout=layout.name, converted_from=filename)}
