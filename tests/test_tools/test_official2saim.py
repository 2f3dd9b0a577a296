"""tools/model_converters/official2saim.py: the model config it prints pastes into a config inheriting
configs/_base_/models/saim_vit-base-p16.py as it is; --final-norm decoder."""
import os.path as osp
import runpy
import sys

import pytest
import torch
from mmengine.config import Config
from mmpretrain.registry import MODELS

import saim_mm  # noqa: F401
from saim_mm.checkpoint import check_state_dict
from tests.conftest import REPO
from tests.test_checkpoint.test_official_layout import authors_state_dict

TOOL = osp.join(REPO, 'tools', 'model_converters', 'official2saim.py')
BASE = osp.join(REPO, 'configs', '_base_', 'models', 'saim_vit-base-p16.py')


def run_tool(*args, capsys) -> str:
    argv = sys.argv
    sys.argv = [TOOL, *map(str, args)]
    try:
        runpy.run_path(TOOL, run_name='__main__')
    finally:
        sys.argv = argv
    return capsys.readouterr().out


@pytest.mark.parametrize('shared', [False, True])
def test_printed_model_config_pastes_into_a_config_inheriting_the_base(tmp_path, capsys, shared):
    src, dst = tmp_path / 'theirs.pth', tmp_path / 'converted.pth'
    sd = authors_state_dict(depth=4, query_depth=2, C=48, hidden=96, patch=4, img=16, predictor='linear',
                            shared=shared, kernel_size=None)
    torch.save({'model': sd}, src)
    out = run_tool(src, dst, '--num-heads', '4', *(['--query-depth', '2'] if shared else []), capsys=capsys)
    line = next(line for line in out.splitlines() if line.startswith('model = '))
    cfg_file = tmp_path / 'pasted.py'
    cfg_file.write_text(f'_base_ = [{BASE!r}]\n{line}\n')
    model = MODELS.build(Config.fromfile(str(cfg_file)).model)
    assert model.backbone.arch_settings['num_heads'] == 4 and model.neck.num_layers == 2
    assert model.neck.share_encoder_weights is shared
    check_state_dict(torch.load(dst, weights_only=True)['state_dict'],
                     {k: tuple(v.shape) for k, v in model.state_dict().items()}, 'converted')


def test_final_norm_from_their_decoder(tmp_path, capsys):
    src = tmp_path / 'theirs.pth'
    sd = authors_state_dict()
    torch.save({'model': sd}, src)
    run_tool(src, tmp_path / 'identity.pth', capsys=capsys)
    out = run_tool(src, tmp_path / 'decoder.pth', '--final-norm', 'decoder', capsys=capsys)
    assert 'added backbone.ln1.weight: copy of neck.ln (their decoder norm)' in out
    identity = torch.load(tmp_path / 'identity.pth', weights_only=True)['state_dict']
    decoder = torch.load(tmp_path / 'decoder.pth', weights_only=True)['state_dict']
    assert torch.equal(identity['backbone.ln1.weight'], torch.ones(32))
    assert torch.equal(decoder['backbone.ln1.weight'], sd['norm.weight'])
    assert torch.equal(decoder['backbone.ln1.bias'], sd['norm.bias'])
    assert all(torch.equal(v, identity[k]) for k, v in decoder.items() if not k.startswith('backbone.ln1.'))
