import pytest

from saim_mm.version_check import REQUIRED, check_versions


def test_installed_stack_passes():
    check_versions()
    assert set(REQUIRED) == {'torch', 'mmengine', 'mmcv', 'mmpretrain'}


def test_incompatible_version_names_package_and_range():
    with pytest.raises(ImportError, match=r'mmcv>=9\.0\.0,<10\.0\.0 is required, found mmcv==2\.1\.0'):
        check_versions({'mmcv': ('9.0.0', '10.0.0')})


def test_missing_package_is_named():
    with pytest.raises(ImportError, match='not-a-real-package>=1.0,<2.0 is required but not installed'):
        check_versions({'not-a-real-package': ('1.0', '2.0')})
