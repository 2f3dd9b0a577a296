"""The multi-seed study: pre-train rows of configs on a class-folder data set (:mod:`.runs`), probe their
frozen encoders with the protocols of ``configs/benchmarks/demo/`` (:mod:`.protocols`), also on a few labels
per class (:mod:`.labels`), and report the mean and spread over seeds (:mod:`.report`); :mod:`.data` reads
and checks the images, :mod:`.cli` is the command line of ``tools/analysis/small_study.py``."""
from .data import ImageFolderError, check_image_folder
from .labels import LabelBudget, draw_subset, label_budgets
from .protocols import PROBE_CONFIGS, PROTOCOLS, FeatureSet, Protocol
from .runs import DEFAULT_ROWS, RANDOM, Row

__all__ = [
    'DEFAULT_ROWS', 'FeatureSet', 'ImageFolderError', 'LabelBudget', 'PROBE_CONFIGS', 'PROTOCOLS', 'Protocol',
    'RANDOM', 'Row', 'check_image_folder', 'draw_subset', 'label_budgets'
]
