"""The software and hardware a run used: ``python -m common.env`` prints it.

The same dictionary is written into every results folder (summary.json), as the record's
"environment" section.  Besides the versions it answers the question a GPU user has first: can
Chainer use CUDA here, and if not, why not (``cuda_usable``, ``cuda_problem``, ``cuda_fix``)?
:func:`common.cli.get_device` turns the same answer into the one-line error of ``--gpu N``.
"""
import importlib.util
import os
import platform
import sys

import common  # noqa: F401  (Chainer compatibility before chainer is imported)
import chainer
import numpy

from common import compat

#: The least NVIDIA driver (Linux) that runs every minor release of a CUDA major version
#: ("minor-version compatibility", NVIDIA's CUDA release notes): the gpu extra's CuPy is built for
#: CUDA 12, cupy-cuda13x for CUDA 13.
MINIMUM_DRIVER = {12: '525.60.13', 13: '580'}
INSTALL_GPU_EXTRA = "pip install -e '.[gpu]' (README.md, \"On a GPU\")"

# cudaError_t values (CUDA runtime API) that have their own explanation.
_INSUFFICIENT_DRIVER = 35
_NO_DEVICE = 100


def one_line(error):
    """'Type: message' of an exception, on one line (CUDA and loader messages span several)."""
    message = ' '.join(str(error).split())
    if len(message) > 200:
        message = message[:200] + '...'
    return '{}: {}'.format(type(error).__name__, message) if message else type(error).__name__


def _version(code):
    """'12.9' from the CUDA API's 12090; None for 0 (no driver)."""
    return '{}.{}'.format(code // 1000, code % 1000 // 10) if code else None


def nvidia_driver():
    """The NVIDIA kernel driver's version ('580.159.04'), or None where none is loaded."""
    try:
        with open('/proc/driver/nvidia/version') as f:
            words = f.readline().split()
    except OSError:
        return None
    versions = [w for w in words if w[:1].isdigit() and w.count('.') >= 1]
    return versions[0] if versions else None


def _cuda_problem(gpu, info):
    """(why CUDA cannot be used for device ``gpu``, what to do), or None when it can.

    Fills ``info`` with what it learns on the way (runtime and driver versions, GPU count).
    """
    cuda = chainer.backends.cuda
    if importlib.util.find_spec('cupy') is None:
        return 'CuPy is not installed', 'install the gpu extra: ' + INSTALL_GPU_EXTRA
    if not cuda.available:
        name = (compat.cupy_distribution() or ('cupy-cuda12x', ''))[0]
        return ('CuPy {} cannot load the CUDA libraries it needs ({})'.format(
                    info['cupy'] or '', one_line(getattr(cuda, '_resolution_error', '?'))),
                "install them with CuPy: pip install '{}[ctk]' (the gpu extra does), or install "
                "the CUDA Toolkit this CuPy was built for".format(name))
    runtime = cuda.cupy.cuda.runtime
    info['cuda_runtime'] = _version(runtime.runtimeGetVersion())
    info['cuda_driver'] = _version(runtime.driverGetVersion())
    major = int(info['cuda_runtime'].split('.')[0])
    needs = 'CUDA {}'.format(major)
    driver = 'the NVIDIA driver {} or newer'.format(MINIMUM_DRIVER[major]) \
        if major in MINIMUM_DRIVER else 'an NVIDIA driver for {}'.format(needs)
    if info['cuda_driver'] is None:
        return ('no NVIDIA driver is installed (CuPy {} needs one for {})'.format(
                    info['cupy'], needs), 'install ' + driver)
    try:
        count = runtime.getDeviceCount()
    except runtime.CUDARuntimeError as error:
        if error.status == _INSUFFICIENT_DRIVER:
            return ('the NVIDIA driver supports CUDA {}, older than the {} of CuPy {}'.format(
                        info['cuda_driver'], needs, info['cupy']),
                    'install {}, or the CuPy package of CUDA {} (README.md, "On a GPU")'.format(
                        driver, info['cuda_driver'].split('.')[0]))
        if error.status == _NO_DEVICE:
            count = 0
        else:
            return ('CUDA cannot list the GPUs ({})'.format(one_line(error)),
                    'check the GPU with nvidia-smi')
    info['gpu_count'] = count
    if count == 0:
        return ('no CUDA GPU is visible (the NVIDIA driver, CUDA {}, finds none)'.format(
                    info['cuda_driver']),
                'check the GPU with nvidia-smi (and CUDA_VISIBLE_DEVICES)')
    if gpu >= count:
        return ('there is no GPU {}: this machine has {}'.format(gpu, count),
                'use --gpu 0' if count == 1 else 'use --gpu 0 to {}'.format(count - 1))
    return None


def cuda_report(gpu=0):
    """Whether Chainer can use CUDA device ``gpu`` and, when it cannot, why and what to do.

    Keys: ``cupy`` (version), ``cuda_usable``, ``cuda_problem`` and ``cuda_fix`` (None when
    usable), ``cuda_runtime`` and ``cuda_driver`` (CUDA versions of CuPy's runtime library and of
    the driver), ``nvidia_driver``, ``gpu_count``, ``gpu``, ``gpu_memory_mib``,
    ``gpu_compute_capability``, ``cudnn`` (version, CuPy < 14 only), ``nccl``.  Never raises:
    every failure is the answer.
    """
    info = {'cupy': None, 'cuda_usable': False, 'cuda_problem': None, 'cuda_fix': None,
            'cuda_runtime': None, 'cuda_driver': None, 'nvidia_driver': nvidia_driver(),
            'gpu_count': None, 'gpu': None, 'gpu_memory_mib': None,
            'gpu_compute_capability': None, 'cudnn': None, 'nccl': None}
    cupy_package = compat.cupy_distribution()
    info['cupy'] = cupy_package[1] if cupy_package else None
    try:
        problem = _cuda_problem(gpu, info)
    except Exception as error:  # noqa: BLE001  (a CUDA failure none of the checks foresaw)
        problem = ('CUDA failed: {}'.format(one_line(error)), 'check the GPU with nvidia-smi')
    if problem:
        info['cuda_problem'], info['cuda_fix'] = problem
        return info
    cupy = chainer.backends.cuda.cupy
    info['cupy'] = cupy.__version__
    try:
        props = cupy.cuda.runtime.getDeviceProperties(gpu)
        name = props['name']
        info['gpu'] = name.decode() if isinstance(name, bytes) else name
        info['gpu_memory_mib'] = int(props['totalGlobalMem'] // 2 ** 20)
        info['gpu_compute_capability'] = '{}.{}'.format(props['major'], props['minor'])
    except Exception as error:  # noqa: BLE001  (a listed GPU that cannot be queried)
        info['cuda_problem'] = 'GPU {} cannot be queried ({})'.format(gpu, one_line(error))
        info['cuda_fix'] = 'check the GPU with nvidia-smi'
        return info
    info['cuda_usable'] = True
    if chainer.backends.cuda.cudnn_enabled:
        info['cudnn'] = str(cupy.cuda.cudnn.getVersion())
    try:
        from cupy.cuda import nccl
        info['nccl'] = str(nccl.get_version()) if nccl.available else None
    except Exception:  # noqa: BLE001  (NCCL is optional: multi-GPU training only)
        pass
    return info


def describe(gpu=None):
    """Versions of Python, Chainer, NumPy and CuPy, the compat patches, and the CUDA report.

    ``gpu``: the device to describe; by default CuPy's current device (the one ``--gpu`` chose)
    where CUDA can be used, else 0.
    """
    info = {
        'python': platform.python_version(),
        'platform': platform.platform(),
        'chainer': chainer.__version__,
        'numpy': numpy.__version__,
    }
    if gpu is None:
        gpu = 0
        if chainer.backends.cuda.available:
            try:
                gpu = chainer.backends.cuda.cupy.cuda.Device().id
            except Exception:  # noqa: BLE001  (no driver or device: the report says why)
                pass
    info.update(cuda_report(gpu))
    info['chainer_cudnn_enabled'] = bool(chainer.backends.cuda.cudnn_enabled)
    info['cudnn_in_use'] = bool(info['cuda_usable'] and
                                chainer.backends.cuda.should_use_cudnn('>=auto'))
    info['cupy_tf32'] = os.environ.get('CUPY_TF32')  # '1': cuBLAS multiplies float32 in TF32
    info['compat_patches'] = list(compat.APPLIED)
    info['silenced_warnings'] = list(compat.SILENCED)
    return info


def format_block(info):
    width = max(len(k) for k in info)
    return '\n'.join('{:<{w}}  {}'.format(k, '-' if v in (None, []) else v, w=width)
                     for k, v in info.items())


def main():
    print(format_block(describe()))
    return 0


if __name__ == '__main__':
    sys.exit(main())
