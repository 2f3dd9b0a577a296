"""saim_mm's model index in mmpretrain's ModelHub: get_model, list_models and FeatureExtractor."""
import copy
import glob
import os.path as osp

import pytest
import torch
import yaml
from mmengine.config import Config
from mmpretrain import FeatureExtractor, get_model, list_models
from mmpretrain.apis import ModelHub
from mmpretrain.registry import MODELS

import saim_mm  # noqa: F401
from saim_mm.apis import MODEL_INDEX, extract_features, register_model_index
from tests.conftest import REPO

with open(osp.join(REPO, 'configs', 'saim', 'metafile.yml')) as f:
    METAFILE = yaml.safe_load(f)
ENTRIES = {m['Name']: m for m in METAFILE['Models']}
# a ViT-B entry is built at a tiny width (12 blocks, so that every decoder depth of the ablations divides it)
TINY_VIT = dict(arch=dict(_delete_=True, embed_dims=24, num_layers=12, num_heads=2, feedforward_channels=48))
SCOPES = {'configs/benchmarks/coco/': 'mmdet', 'configs/benchmarks/ade20k/': 'mmseg'}


def test_list_models_lists_every_entry_and_the_index_is_consistent():
    names = list_models('*saim*')
    assert sorted(ENTRIES) == names == sorted(register_model_index())
    assert register_model_index() == names  # idempotent
    assert osp.isfile(MODEL_INDEX)
    claimed = {m['Config'] for m in METAFILE['Models']}
    paper = {osp.relpath(p, REPO) for p in glob.glob(osp.join(REPO, 'configs', 'saim', '*.py'))
             + glob.glob(osp.join(REPO, 'configs', 'saim', 'ablations', '*.py')) if 'vitb' in p or 'ablations' in p
             or 'demo' in p}
    assert paper <= claimed, f'paper configs without an index entry: {sorted(paper - claimed)}'
    for entry in METAFILE['Models']:
        assert osp.isfile(osp.join(REPO, entry['Config'])), entry['Name']
        assert entry['Weights'] is None  # nothing hosted: pretrained takes a path
        assert ModelHub.get(entry['Name']).config.filename == osp.join(REPO, entry['Config'])
        for name in entry.get('Downstream', []):
            assert name in ENTRIES, f'{entry["Name"]}: downstream {name} is not an entry'


@pytest.mark.parametrize('name', sorted(ENTRIES))
def test_get_model_builds_every_entry(name):
    config = ENTRIES[name]['Config']
    scope = next((s for prefix, s in SCOPES.items() if config.startswith(prefix)), None)
    kwargs = dict(_scope_=scope) if scope else {}
    if '_demo' not in name and 'demo' not in config:
        kwargs['backbone'] = copy.deepcopy(TINY_VIT)  # mmengine pops _delete_
    model = get_model(name, **kwargs)
    assert model._metainfo.name == name
    expected = Config.fromfile(osp.join(REPO, config)).model.type
    assert type(model).__name__ == expected
    if expected == 'SAIM':
        assert type(model.backbone).__name__ == 'SAIMViT' and type(model.neck).__name__ == 'SAIMDecoder'


@pytest.fixture(scope='module')
def demo_checkpoint(tmp_path_factory):
    """A SAIM pre-training checkpoint of configs/saim/demo_cpu.py (random weights, the demo's layout)."""
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(osp.join(REPO, 'configs/saim/demo_cpu.py')).model)
    model.init_weights()
    path = str(tmp_path_factory.mktemp('demo') / 'epoch_30.pth')
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, path)
    return path, model


def test_get_model_with_pretrained_path_loads_the_checkpoint(demo_checkpoint, demo_data):
    path, trained = demo_checkpoint
    model = get_model('saim_vit-demo-p4_1xb32-30e_demo', pretrained=path)
    assert all(torch.equal(v, trained.state_dict()[k]) for k, v in model.state_dict().items())
    images = sorted(glob.glob(osp.join(demo_data, 'val', '*', '*.png')))[:2]
    assert torch.equal(extract_features(model, images), extract_features(trained.eval(), images))


def test_feature_extractor_on_a_demo_checkpoint(demo_checkpoint, demo_data):
    """mmpretrain's FeatureExtractor with a Downstream entry (a classifier with a test pipeline) and the
    SAIM pre-training checkpoint: the encoder's (B, C) features of two images."""
    path, trained = demo_checkpoint
    images = sorted(glob.glob(osp.join(demo_data, 'val', '*', '*.png')))[:2]
    extractor = FeatureExtractor('vit-demo-p4_saim-pre_1xb32-linear-90e_demo', pretrained=path)
    feats = torch.stack([f[0] for f in extractor(images, stage='backbone')])
    assert feats.shape == (2, 96)
    backbone = extractor.model.backbone.state_dict()
    assert all(torch.equal(v, trained.state_dict()['backbone.' + k]) for k, v in backbone.items())
    assert not torch.allclose(feats[0], feats[1])
    # the same as saim_mm.apis on the SAIM model, given the images as the classifier's test pipeline makes
    # them (short edge 36, centre crop 32)
    data = next(extractor.preprocess(images, batch_size=2))
    x = extractor.model.data_preprocessor(data, False)['inputs']
    assert torch.allclose(feats, extract_features(trained.eval(), x), atol=1e-6)
