"""What a measurement ran on, written beside its figures: the command, the machine, the versions, the date.

Every benchmark tool's ``--out`` file and the study's ``study.json`` carry :func:`provenance`, so that a
table rendered from them can say how, where and when each figure was made.
"""
import datetime
import json
import os
import os.path as osp
import platform
import shlex
import sys
from importlib import metadata
from typing import Dict, Optional

import torch

PACKAGES = ('torch', 'mmengine', 'mmpretrain', 'mmcv')


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``; ``platform.processor()`` elsewhere)."""
    if osp.isfile('/proc/cpuinfo'):
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    return platform.processor() or platform.machine()


def machine(device: str = 'cpu') -> Dict[str, object]:
    """The CPU model and core count, torch's intra-op threads and, for ``device='cuda'``, the GPU's name."""
    gpu = None
    if device.startswith('cuda') and torch.cuda.is_available():
        gpu = torch.cuda.get_device_name(torch.device(device))
    return dict(cpu=cpu_model(), cpu_count=os.cpu_count(), torch_threads=torch.get_num_threads(), gpu=gpu,
                platform=platform.platform())


def versions() -> Dict[str, Optional[str]]:
    """Python's version and those of the packages the figures depend on (None: not installed)."""
    out: Dict[str, Optional[str]] = dict(python=platform.python_version())
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    out['cuda'] = torch.version.cuda
    return out


def command() -> str:
    """The command line of this process, as it can be typed again."""
    return shlex.join(['python', *sys.argv])


def provenance(device: str = 'cpu') -> Dict[str, object]:
    """``command``, ``machine``, ``versions`` and ``date_utc`` (ISO 8601, seconds) of this process."""
    return dict(command=command(), machine=machine(device), versions=versions(),
                date_utc=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'))


def write_results(path: str, figures: dict, device: str = 'cpu') -> str:
    """Write ``figures`` with :func:`provenance` (its keys first) to the JSON file ``path``; return the path.

    Raises:
        ValueError: ``figures`` has a key of the provenance (``command``, ``machine``, ...).
    """
    record = provenance(device)
    clash = sorted(set(record) & set(figures))
    if clash:
        raise ValueError(f'write_results: figures may not use the provenance keys {clash}.')
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'w') as f:
        json.dump({**record, **figures}, f, indent=2)
    return path
