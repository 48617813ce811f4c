"""Make Chainer 7.8.1 (the last release, 2020) import and run on current Python and NumPy.

Chainer is frozen upstream; this module patches the few things it needs from its
environment that no longer exist, and nothing else.  It is applied by ``common/__init__.py``,
so ``import common`` (or any ``common.*`` module) before chainer is enough, and, in the installed
environment, by the import hook ``bc7db4a2_chainer_hook`` on the first ``import chainer``, so
that Chainer imports in any order (a researcher's script, ``python -c "import chainermn"``).
Each patch is applied only when the thing it replaces is missing, and each has a test in
``tests/test_compat.py`` that exercises the code path which fails without it.

Patches
-------
numpy.sctypes
    Removed in NumPy 2.0.  ``chainer.functions.array.as_strided`` reads it at import time
    (``np.sctypes['int']``), so ``import chainer`` fails without it, and again in its
    backward pass (``np.sctypes['float']``).
numpy.distutils
    Removed for Python >= 3.12 (and deprecated in NumPy 2.x).  ``chainer._environment_check``
    imports ``numpy.distutils.system_info`` at import time, only to look for Apple's
    Accelerate BLAS on macOS.  The stand-in reports no BLAS information, which skips that
    macOS-only warning.

``pkg_resources`` (also imported by ``chainer._environment_check``) is not patched: setup.py
requires ``setuptools<81``, the last releases that ship it.  Its deprecation warning, printed on
every ``import chainer``, is silenced, since nothing here can act on it.

Expected warnings
-----------------
cuDNN on CuPy 14
    CuPy 14 removed its cuDNN module; Chainer then runs its own GPU kernels (cudnn_enabled is
    False), and warns "cuDNN is not enabled. Please reinstall CuPy after you install cudnn" on
    every ``import chainer``.  No CuPy 14 can follow that advice.  Where the installed CuPy is 14
    or newer, and only there (on CuPy 13 a missing cuDNN can be installed, and the warning
    stays), ``CHAINER_CUDNN`` defaults to 0: Chainer's own switch for "no cuDNN", which changes
    nothing else on a CuPy without cuDNN and, unlike a warnings filter, holds inside
    ``warnings.catch_warnings`` blocks (pytest's) and in child processes.  A value the user set
    is kept.  ``python -m common.env`` reports whether cuDNN is in use, and lists the warnings
    so avoided (:data:`SILENCED`).
"""
import functools
import importlib
import importlib.metadata
import importlib.util
import os
import sys
import types
import warnings

import numpy

APPLIED = []  # names of the patches applied in this process, for tests and `python -m common.env`
SILENCED = []  # expected warnings avoided in this process (module docstring), for the same


def _restore_sctypes():
    if 'sctypes' in numpy.__dict__:
        return
    try:  # NumPy 2.x raises AttributeError from its module __getattr__ for removed names
        numpy.sctypes
        return
    except AttributeError:
        pass
    # The NumPy 1.x table, restricted to the types NumPy 2 still has.
    numpy.sctypes = {
        'int': [numpy.int8, numpy.int16, numpy.int32, numpy.int64],
        'uint': [numpy.uint8, numpy.uint16, numpy.uint32, numpy.uint64],
        'float': [numpy.float16, numpy.float32, numpy.float64, numpy.longdouble],
        'complex': [numpy.complex64, numpy.complex128, numpy.clongdouble],
        'others': [bool, object, bytes, str, numpy.void],
    }
    APPLIED.append('numpy.sctypes')


def _stand_in_numpy_distutils():
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', DeprecationWarning)
        try:
            importlib.import_module('numpy.distutils.system_info')
            return
        except ImportError:
            pass
    distutils = types.ModuleType('numpy.distutils')
    distutils.__doc__ = 'Stand-in from common.compat: numpy.distutils is gone on this Python.'
    system_info = types.ModuleType('numpy.distutils.system_info')
    system_info.get_info = lambda name, notfound_action=0: {}
    distutils.system_info = system_info
    numpy.distutils = distutils  # chainer reads it as an attribute of numpy
    sys.modules['numpy.distutils'] = distutils
    sys.modules['numpy.distutils.system_info'] = system_info
    APPLIED.append('numpy.distutils')


@functools.lru_cache(maxsize=None)
def cupy_distribution():
    """(name, version) of the installed CuPy package (cupy-cuda12x, cupy-cuda13x, cupy...), or None.

    Read from the package metadata, without importing CuPy: :func:`apply` runs before chainer
    imports it, and importing CuPy here would load the CUDA libraries for every command.
    """
    if importlib.util.find_spec('cupy') is None:
        return None
    for distribution in importlib.metadata.distributions():
        name = distribution.metadata['Name'] or ''
        if name.lower() == 'cupy' or name.lower().startswith('cupy-'):
            return name, distribution.version
    return None


def _silence_expected_warnings():
    cupy = cupy_distribution()
    if cupy is None or int(cupy[1].split('.')[0]) < 14:
        return
    # Chainer reads it when it is imported ("Set 0 to completely disable cuDNN in Chainer").
    if os.environ.setdefault('CHAINER_CUDNN', '0') == '0' and not SILENCED:
        SILENCED.append('cuDNN is not enabled')


def apply():
    """Apply every patch that this Python and NumPy need.  Idempotent."""
    warnings.filterwarnings('ignore', message='pkg_resources is deprecated', category=UserWarning)
    _restore_sctypes()
    _stand_in_numpy_distutils()
    _silence_expected_warnings()
