"""Packaging for saim_mm."""
import os.path as osp
import re

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))


def read_version() -> str:
    with open(osp.join(HERE, 'saim_mm', 'version.py'), encoding='utf-8') as f:
        return re.search(r"__version__ = '([^']+)'", f.read()).group(1)


def read_requirements(name: str) -> list:
    reqs = []
    with open(osp.join(HERE, 'requirements', name), encoding='utf-8') as f:
        for line in f:
            line = line.split('#')[0].strip()
            if line and not line.startswith('-r'):
                reqs.append(line)
    return reqs


setup(
    name='saim_mm',
    version=read_version(),
    description='SAIM (Stochastic Autoregressive Image Modeling) for OpenMMLab',
    long_description=open(osp.join(HERE, 'README.md'), encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=('saim_mm', 'saim_mm.*')),
    python_requires='>=3.9',
    install_requires=read_requirements('runtime.txt') + read_requirements('mminstall.txt'),
    extras_require={'tests': read_requirements('tests.txt')},
    license='Apache License 2.0',
)
