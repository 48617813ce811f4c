"""The switch that runs the GPU code path on NumPy arrays, so the CPU can prove what the GPU runs.

On a GPU (CuPy arrays) this repository's code takes other branches than on the CPU:

* convolutions and deconvolutions: :mod:`common.bounded_convolution` (temporaries bounded by
  ``CHUNK_BYTES``, dec1 expanded on its output side) instead of the CPU kernels of
  :mod:`common.fast_convolution`;
* activation and BatchNormalization: Chainer's own functions, not :mod:`common.fast_normalization`
  (which is CPU-only);
* the NaN stop (:class:`common.extensions.StopOnNonFinite`) keeps a flag on the device and reads it
  to the host only where it must, instead of reading the loss every iteration.

Inside ``with gpu_path.on_numpy():`` (``chainer.using_config('gpu_path_on_numpy', True)``), or in a
whole process started with ``GPU_PATH_ON_NUMPY=1`` in its environment, NumPy arrays take those GPU
branches too.  The code is the same, written once with ``xp`` (``chainer.backend.get_array_module``);
only the array module differs, and so do the kernels of Chainer's own functions (BatchNormalization,
LeakyReLU, RMSprop, ...), which Chainer writes separately for NumPy and CuPy.  The tests compare the
GPU path with the stock functions this way on every machine, and ``bench/gpu_memory.py`` measures
its memory with ``tracemalloc`` where no GPU is at hand.
"""
import contextlib
import os

import numpy

import common  # noqa: F401  (Chainer compatibility)
import chainer

CONFIG_KEY = 'gpu_path_on_numpy'
#: ``GPU_PATH_ON_NUMPY=1``: the switch's default for a whole process (a train.py run, a bench).
ENVIRONMENT = 'GPU_PATH_ON_NUMPY'


def _from_environment():
    value = os.environ.get(ENVIRONMENT, '0').strip()
    if value not in ('', '0', '1'):
        raise ValueError('{}={!r}: must be 0 or 1'.format(ENVIRONMENT, value))
    return value == '1'


if not hasattr(chainer.global_config, CONFIG_KEY):
    setattr(chainer.global_config, CONFIG_KEY, _from_environment())


def enabled():
    """True where NumPy arrays take the GPU code path."""
    return bool(getattr(chainer.config, CONFIG_KEY, False))


@contextlib.contextmanager
def on_numpy(value=True):
    """Run the GPU code path on NumPy arrays inside the block (``value=False``: the CPU path)."""
    with chainer.using_config(CONFIG_KEY, bool(value)):
        yield


def takes_gpu_path(array):
    """True when ``array`` (an ndarray or a Variable) is computed by the GPU code path: a CuPy
    (or other non-NumPy) array, or a NumPy array while the switch is on."""
    array = chainer.as_array(array)
    if isinstance(array, numpy.ndarray) or numpy.isscalar(array):
        return enabled()
    return True
