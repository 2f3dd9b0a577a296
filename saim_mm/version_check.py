"""Refuse to import next to versions of the stack that saim_mm was not built for, with a clear message."""
from importlib import metadata

from packaging.version import Version

# package: (minimum inclusive, maximum exclusive)
REQUIRED = {
    'torch': ('2.1.0', '3.0.0'),
    'mmengine': ('0.10.0', '1.0.0'),
    'mmcv': ('2.0.0', '2.2.0'),
    'mmpretrain': ('1.2.0', '1.3.0'),
}
SETUP_HINT = 'Run `bash tools/setup_env.sh` to install the versions pinned in requirements/.'


def check_versions(required: dict = REQUIRED) -> None:
    """Raise ImportError naming every package whose installed version is missing or out of range."""
    problems = []
    for name, (low, high) in required.items():
        try:
            found = metadata.version(name)
        except metadata.PackageNotFoundError:
            problems.append(f'{name}>={low},<{high} is required but not installed')
            continue
        if not Version(low) <= Version(Version(found).base_version) < Version(high):
            problems.append(f'{name}>={low},<{high} is required, found {name}=={found}')
    if problems:
        raise ImportError('saim_mm: ' + '; '.join(problems) + '. ' + SETUP_HINT)
