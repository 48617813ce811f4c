"""Chainer 7.8.1 imports and runs through common.compat; one test per patch."""
import subprocess
import sys

import numpy
import pytest

import common  # noqa: F401  (applies common.compat)
from common import compat

import chainer
import chainer.functions as F


def test_chainer_imports_through_compat():
    assert chainer.__version__ == '7.8.1'


def test_without_compat_chainer_import_fails_exactly_when_a_patch_was_needed():
    # An independent interpreter that imports chainer without common.compat: the installed
    # import hook (tests/test_import_hook.py) taken out first.
    result = subprocess.run([sys.executable, '-c', 'import bc7db4a2_chainer_hook as hook; '
                             'hook.uninstall(); import chainer'], capture_output=True, text=True)
    if compat.APPLIED:
        assert result.returncode != 0, 'patches %s were applied but not needed' % compat.APPLIED
    else:
        assert result.returncode == 0, result.stderr


def test_sctypes_patch_serves_as_strided_forward_and_backward():
    # as_strided reads numpy.sctypes['int'] at import and numpy.sctypes['float'] in backward.
    assert numpy.float32 in numpy.sctypes['float']
    assert numpy.int64 in numpy.sctypes['int']
    x = chainer.Variable(numpy.arange(6, dtype=numpy.float32))
    y = F.as_strided(x, (3, 2), (1, 1))  # overlapping windows [0,1], [1,2], [2,3]
    numpy.testing.assert_array_equal(y.array, [[0, 1], [1, 2], [2, 3]])
    F.sum(y).backward()
    numpy.testing.assert_array_equal(x.grad, [1, 2, 2, 1, 0, 0])


@pytest.mark.skipif(numpy.lib.NumpyVersion(numpy.__version__) < '2.0.0',
                    reason='numpy.sctypes exists on NumPy 1.x: the patch is not applied')
def test_sctypes_patch_applied_on_numpy_2():
    assert 'numpy.sctypes' in compat.APPLIED


def test_numpy_distutils_stand_in_serves_the_macos_blas_check(monkeypatch):
    # chainer._environment_check imports numpy.distutils.system_info and, on macOS only,
    # asks it for the BLAS build; run that branch here.
    from chainer import _environment_check
    monkeypatch.setattr(_environment_check.sys, 'platform', 'darwin')
    _environment_check._check_osx_numpy_backend()
    if 'numpy.distutils' in compat.APPLIED:
        assert sys.modules['numpy.distutils.system_info'].get_info('blas_opt') == {}


def test_apply_is_idempotent():
    before = list(compat.APPLIED)
    compat.apply()
    assert compat.APPLIED == before
