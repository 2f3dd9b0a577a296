"""``checkpoint_filter_fn(state_dict, model)``, in timm's manner, run where weights go into saim_mm's models
(:func:`add_checkpoint_filter`: ``load_state_dict``, ``load_from``, ``get_model(pretrained=)``; a ViT's
``init_cfg=dict(type='Pretrained')``: :func:`load_pretrained`); nothing changes for any other model."""
import argparse
import re
from typing import Mapping, Optional, Tuple

from mmengine.logging import print_log
from mmengine.runner.checkpoint import load_state_dict
from torch import Tensor, nn

from .convert import ConversionReport, check_state_dict, fuse_qkv, num_blocks, official_saim_to_mm, timm_to_mm
from .errors import ConversionError
from .io import StateDict, load_checkpoint_file, load_state_dict_file, strip_prefix, unwrap

LAYOUTS = (  # (name, description, keys that identify it; one ending in '.' stands for any key under it)
    ('saim_mm', 'saim_mm SAIM checkpoint (encoder backbone.*, decoder neck.*)',
     ('backbone.patch_embed.projection.weight', 'neck.predictor.')),
    ('backbone', 'saim_mm / mmpretrain ViT encoder under backbone.*', ('backbone.patch_embed.projection.weight', )),
    ('encoder', 'mmpretrain ViT encoder without prefix', ('patch_embed.projection.weight', 'layers.0.')),
    ('authors', "the authors' SAIM release (qiy20/SAIM)", ('blocks.0.attn.q.weight', )),
    ('timm', 'timm VisionTransformer', ('patch_embed.proj.weight', 'blocks.0.attn.qkv.weight')),
)


def detect_layout(state_dict: Mapping, what: Optional[str] = 'state dict') -> Optional[Tuple[str, str]]:
    """``(name, description)`` of the first of :data:`LAYOUTS` whose keys ``state_dict`` has; else None if
    ``what`` is None, or a :class:`ConversionError` listing every layout with its keys, and the file's keys."""
    found = next(((n, d) for n, d, signature in LAYOUTS if all(
        any(k.startswith(s) for k in state_dict) if s.endswith('.') else s in state_dict for s in signature)), None)
    if found or what is None:
        return found
    tried = '; '.join(f'{n} = {d} (keys {", ".join(s + "*" if s.endswith(".") else s for s in sig)})'
                      for n, d, sig in LAYOUTS)
    raise ConversionError(f'{what} fits none of the checkpoint layouts saim_mm reads: {tried}. It has '
                          f'{len(state_dict)} keys, e.g. {sorted(state_dict)[:6]}.')


def _to_saim_mm(sd: StateDict, layout: str) -> Tuple[StateDict, ConversionReport]:
    """``sd`` in ``layout`` -> saim_mm's: ``backbone.*`` and, where the file has a decoder, ``neck.*``."""
    if layout == 'authors' and num_blocks(sd, 'query_blocks.'):  # pre-training; else a fine-tuned ViT: timm's
        return official_saim_to_mm(sd)
    encoder, report = timm_to_mm(fuse_qkv(sd)) if layout in ('authors', 'timm') else (sd, ConversionReport())
    return ({'backbone.' + k: v for k, v in encoder.items()} if layout not in ('saim_mm', 'backbone') else sd), report


def _generic(key: str) -> str:  # block indices replaced by '*'
    return re.sub(r'(?<=\.)\d+(?=\.)|^\d+(?=\.)', '*', key)


def checkpoint_filter_fn(state_dict: Mapping, model: nn.Module, source: str = 'state dict') -> StateDict:
    """``state_dict`` (a checkpoint dict, ``module.`` prefixes allowed) in any of :data:`LAYOUTS` -> the layout
    of ``model``: all for a model with ``backbone.*`` keys (``SAIM``), else the encoder. A converted result must
    not have keys or shapes ``model`` lacks (``pos_embed``: any, mmpretrain's ViT resizes it) and must fill what
    it covers: a key may be missing only if no block has its name (``SAIMDenseViT``'s relative position biases)
    or, for a ``SAIM``, the file has nothing of its part (an encoder-only file's decoder). Logs one line."""
    if not isinstance(state_dict, Mapping):
        raise ConversionError(f'{source} is a {type(state_dict).__name__}, not a state dict or checkpoint dict.')
    weights, entry = unwrap(state_dict)
    sd = strip_prefix({k: v for k, v in weights.items() if isinstance(v, Tensor)}, 'module.')
    others = ([k for k in state_dict if k != entry] if entry else []) + [
        f'{k} (not a tensor)' for k, v in weights.items() if not isinstance(v, Tensor)]
    own = {k: (None if k.endswith('pos_embed') else tuple(v.shape)) for k, v in model.state_dict().items()}
    whole = any(k.startswith('backbone.') for k in own)
    report, (name, description) = ConversionReport(), detect_layout(sd, source)
    native = name in (('saim_mm', 'backbone') if whole else ('encoder', ))
    if not native:
        try:
            sd, report = _to_saim_mm(sd, name)
            if not whole:
                report.dropped += [(k, tuple(v.shape)) for k, v in sd.items() if not k.startswith('backbone.')]
                sd = {k[9:]: v for k, v in sd.items() if k.startswith('backbone.')}
            unused = {k: sd.pop(k) for k in ('ln1.weight', 'ln1.bias') if k in sd and k not in own}  # final_norm=False
            part = (lambda k: k.split('.')[0]) if whole else (lambda k: '')  # noqa: E731
            covered = {_generic(k) for k in sd} | {part(k) for k in sd}
            check_state_dict(sd, own, f'converted for {type(model).__name__}', optional=[k for k in own if _generic(
                k) not in covered and ('*' in _generic(k) or part(k) not in covered)])
            sd.update(unused)
        except ConversionError as err:
            raise ConversionError(f'{source} has the keys of layout {name} ({description}) but does not fit it: '
                                  f'{err}') from None
    report.other_entries = others
    facts = '; '.join(line for line in report.lines() if not line.startswith('architecture:')) or 'renamed only'
    done = 'loaded as it is' if native else f"converted to this model's layout: {facts}"
    print_log(f'{source}: layout {name} ({description}), {done}', logger='current')
    return sd


def _filter_pre_hook(module: nn.Module, state_dict: dict, prefix: str, *args) -> None:
    """Load pre-hook: the keys under ``prefix`` through :func:`checkpoint_filter_fn` unless all are the module's."""
    keys = [k for k in state_dict if k.startswith(prefix)]
    own = module.state_dict().keys()
    if not keys or all(k[len(prefix):] in own for k in keys):
        return
    converted = checkpoint_filter_fn({k[len(prefix):]: state_dict.pop(k) for k in keys}, module,
                                     f'{type(module).__name__} state dict')
    state_dict.update({prefix + k: v for k, v in converted.items()})


def add_checkpoint_filter(module: nn.Module) -> None:
    """Run :func:`checkpoint_filter_fn` on every state dict loaded into ``module`` (a load pre-hook)."""
    handle = module.register_load_state_dict_pre_hook(_filter_pre_hook)
    # first of the module's pre-hooks, so that mmpretrain's (pos_embed resizing) see this model's key names
    module._load_state_dict_pre_hooks.move_to_end(handle.id, last=False)


def load_pretrained(model: nn.Module, filename: str, prefix: Optional[str] = None) -> None:
    """``init_cfg=dict(type='Pretrained')`` of a local file, in timm's manner: read weights-only (or
    ``.safetensors``), :func:`checkpoint_filter_fn`, mmengine's ``load_state_dict`` (which logs what is
    missing). ``prefix`` selects the keys under it only when the whole file fits no layout."""
    checkpoint = load_state_dict_file(filename)[0] if filename.endswith('.safetensors') else load_checkpoint_file(
        filename, map_location='cpu', allow=(argparse.Namespace, ))  # the authors' ``args`` entry: plain data
    weights = unwrap(checkpoint)[0] if isinstance(checkpoint, Mapping) else {}
    sub = {k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix or '\0')}
    if sub and not detect_layout(strip_prefix(weights, 'module.'), None):
        checkpoint = sub
    state_dict = checkpoint_filter_fn(checkpoint, model, f'Checkpoint {filename}')
    load_state_dict(model, state_dict, strict=False, logger='current')
