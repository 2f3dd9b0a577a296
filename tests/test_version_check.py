import pytest

from saim_mm.version_check import OPTIONAL, REQUIRED, check_versions


def test_installed_stack_passes():
    check_versions()
    assert set(REQUIRED) == {'torch', 'mmengine', 'mmcv', 'mmpretrain'}
    assert set(OPTIONAL) == {'mmdet', 'mmsegmentation'}


def test_torch_floor_has_the_serialization_api_saim_mm_uses():
    assert REQUIRED['torch'][0] == '2.6.0'
    import torch
    assert callable(torch.serialization.safe_globals) and callable(torch.serialization.add_safe_globals)


def test_incompatible_version_names_package_and_range():
    with pytest.raises(ImportError, match=r'mmcv>=9\.0\.0,<10\.0\.0 is required, found mmcv==2\.1\.0'):
        check_versions({'mmcv': ('9.0.0', '10.0.0')}, {})


def test_too_old_torch_is_refused_with_the_range():
    with pytest.raises(ImportError, match=r'torch>=99\.0\.0,<100\.0\.0 is required, found torch=='):
        check_versions({'torch': ('99.0.0', '100.0.0')}, {})


def test_missing_package_is_named():
    with pytest.raises(ImportError, match='not-a-real-package>=1.0,<2.0 is required but not installed'):
        check_versions({'not-a-real-package': ('1.0', '2.0')}, {})


def test_optional_package_is_checked_only_when_installed():
    check_versions({}, {'not-a-real-package': ('1.0', '2.0')})
    with pytest.raises(ImportError, match=r'mmdet>=9\.0\.0,<10\.0\.0 is required, found mmdet=='):
        check_versions({}, {'mmdet': ('9.0.0', '10.0.0')})
