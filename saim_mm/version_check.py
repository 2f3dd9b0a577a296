"""Refuse to import next to versions of the stack that saim_mm cannot run with, with a clear message."""
from importlib import metadata

from packaging.version import Version

# package: (minimum inclusive, maximum exclusive). Each floor is the first release with everything saim_mm
# calls; each ceiling the first release it is not known to work with.
REQUIRED = {
    # torch.serialization.safe_globals (a context manager) and allow-list entries given as (callable, name)
    # pairs (the checkpoint readers), torch.nn.attention.bias.causal_lower_right (partial prediction),
    # torch.utils.flop_counter (the cost tools): all present from 2.6.
    'torch': ('2.6.0', '3.0.0'),
    # FlexibleRunner with the FSDP and DeepSpeed strategies and their checkpoint hooks as the large-model
    # configs use them, Runner(resume=..., load_from=...) semantics of 0.10.
    'mmengine': ('0.10.0', '1.0.0'),
    # mmcv 2.x transforms and ops; 2.2 is outside what mmdet 3.3 accepts.
    'mmcv': ('2.0.0', '2.2.0'),
    # ViT, MAE heads, HOGGenerator, ModelHub and the selfsup data preprocessor as of 1.2.
    'mmpretrain': ('1.2.0', '1.3.0'),
}
# Needed only by the detection / segmentation configs; checked when installed.
OPTIONAL = {
    'mmdet': ('3.0.0', '3.4.0'),  # mmdet 3.x registries and Mask R-CNN heads; 3.4 is unreleased/untested
    'mmsegmentation': ('1.0.0', '1.3.0'),  # mmseg 1.x UperNet and ADE20K dataset
}
SETUP_HINT = 'Run `bash tools/setup_env.sh` to install the versions pinned in requirements/.'


def _problem(name: str, low: str, high: str, optional: bool):
    try:
        found = metadata.version(name)
    except metadata.PackageNotFoundError:
        return None if optional else f'{name}>={low},<{high} is required but not installed'
    if not Version(low) <= Version(Version(found).base_version) < Version(high):
        return f'{name}>={low},<{high} is required, found {name}=={found}'
    return None


def check_versions(required: dict = REQUIRED, optional: dict = OPTIONAL) -> None:
    """Raise ImportError naming every package whose installed version is missing or out of range.

    Packages in ``optional`` are checked only when installed.
    """
    problems = [p for table, is_optional in ((required, False), (optional, True))
                for name, (low, high) in table.items() if (p := _problem(name, low, high, is_optional))]
    if problems:
        raise ImportError('saim_mm: ' + '; '.join(problems) + '. ' + SETUP_HINT)
