"""saim_mm checkpoint (SAIM pre-training or a classifier) -> backbone-only checkpoint."""
from typing import Tuple

from .errors import ConversionError
from .report import ConversionReport
from .schema import StateDict, check_state_dict, mm_vit_arch, vit_shapes


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
    what = f'{prefix[:-1]} encoder'
    arch = mm_vit_arch(backbone, what)
    check_state_dict(backbone, vit_shapes(**arch, final_norm='ln1.weight' in backbone), what)
    report.arch = arch
    return {prefix + k: v for k, v in backbone.items()}, report
