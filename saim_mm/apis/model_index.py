"""saim_mm's model index (``model-index.yml``, ``configs/saim/metafile.yml``) in mmpretrain's ModelHub."""
import os.path as osp
from typing import List

from mmpretrain.apis import ModelHub

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
MODEL_INDEX = osp.join(REPO, 'model-index.yml')
_registered: List[str] = []


def register_model_index() -> List[str]:
    """Register saim_mm's models with mmpretrain's ``ModelHub`` (idempotent); returns their names.

    Afterwards ``mmpretrain.get_model(name, pretrained=PATH)``, ``list_models('*saim*')`` and the
    inferencers know them; config paths resolve against the repository root. Nothing is registered when
    the package is used without its repository (no ``model-index.yml`` next to it).
    """
    if not _registered and osp.isfile(MODEL_INDEX):
        before = set(ModelHub._models_dict)
        ModelHub.register_model_index(MODEL_INDEX, config_prefix=REPO)
        _registered.extend(sorted(set(ModelHub._models_dict) - before))
    return list(_registered)
