"""The multi-seed study: pre-train rows of configs on a class-folder data set (:mod:`.runs`), probe their
frozen encoders with the protocols of ``configs/benchmarks/demo/`` (:mod:`.protocols`) and report the mean
and spread over seeds (:mod:`.report`); :mod:`.data` reads and checks the images, :mod:`.cli` is the
command line of ``tools/analysis/small_study.py``."""
from .data import ImageFolderError, check_image_folder
from .protocols import PROBE_CONFIGS, PROTOCOLS, FeatureSet, Protocol
from .runs import DEFAULT_ROWS, RANDOM, Row

__all__ = [
    'DEFAULT_ROWS', 'FeatureSet', 'ImageFolderError', 'PROBE_CONFIGS', 'PROTOCOLS', 'Protocol', 'RANDOM', 'Row',
    'check_image_folder'
]
