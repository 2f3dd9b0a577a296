"""State-dict files: one error hierarchy for every reader, and what save_state_dict_file writes."""
import pytest
import torch

from saim_mm.checkpoint import (CheckpointError, CheckpointLoadError, CheckpointNotFoundError, ConversionError,
                                check_state_dict, load_checkpoint_file, load_state_dict_file, save_state_dict_file)


@pytest.mark.parametrize('name', ['epoch_1.pth', 'vit.safetensors'])
def test_missing_file_is_one_error_for_every_reader(tmp_path, name):
    path = str(tmp_path / name)
    readers = [load_state_dict_file] + ([] if name.endswith('.safetensors') else [load_checkpoint_file])
    for read in readers:
        with pytest.raises(CheckpointNotFoundError, match=f'Checkpoint {path} does not exist.') as info:
            read(path)
        assert isinstance(info.value, FileNotFoundError) and isinstance(info.value, CheckpointError)


def test_errors_keep_their_builtin_bases(tmp_path):
    (tmp_path / 'x.safetensors').write_bytes(b'garbage' * 10)
    with pytest.raises(RuntimeError) as info:
        load_state_dict_file(str(tmp_path / 'x.safetensors'))
    assert isinstance(info.value, CheckpointLoadError) and isinstance(info.value, CheckpointError)
    with pytest.raises(ValueError, match=r'missing keys: w \[2\]') as info:
        check_state_dict({}, {'w': (2, )}, 'empty')
    assert isinstance(info.value, ConversionError) and isinstance(info.value, CheckpointError)
    torch.save({'state_dict': {'step': 3}}, tmp_path / 'no_tensors.pth')
    with pytest.raises(ConversionError, match='holds no tensors'):
        load_state_dict_file(str(tmp_path / 'no_tensors.pth'))


def test_saved_files_read_back(tmp_path):
    sd = {'a.weight': torch.randn(2, 3), 'a.bias': torch.randn(2)}
    wrapped, bare, flat = (str(tmp_path / n) for n in ('wrapped.pth', 'bare.pth', 'flat.safetensors'))
    save_state_dict_file(sd, wrapped, meta=dict(arch='tiny'))
    save_state_dict_file(sd, bare, meta=dict(arch='tiny'), wrap=False)
    save_state_dict_file(sd, flat, meta=dict(arch='tiny'))
    assert load_checkpoint_file(wrapped)['meta'] == {'arch': 'tiny'}
    assert load_checkpoint_file(bare).keys() == sd.keys()
    for path, others in ((wrapped, ['meta']), (bare, []), (flat, [])):
        weights, other_entries = load_state_dict_file(path)
        assert other_entries == others
        assert weights.keys() == sd.keys() and all(torch.equal(weights[k], sd[k]) for k in sd)
    from safetensors import safe_open
    with safe_open(flat, 'pt') as f:
        assert f.metadata() == {'arch': 'tiny'}
