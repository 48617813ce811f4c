"""The software and hardware a run used: ``python -m common.env`` prints it.

The same dictionary is written into every results folder (summary.json), as the record's
"environment" section.
"""
import platform
import sys

import chainer
import numpy

from common import compat


def _cupy_info():
    """CuPy, cuDNN and GPU facts, or Nones when CuPy or a GPU is not there."""
    info = {'cupy': None, 'cudnn': None, 'gpu': None, 'gpu_memory_mib': None}
    try:
        import cupy
    except Exception:  # not installed, or installed without a usable CUDA
        return info
    info['cupy'] = cupy.__version__
    try:
        from cupy.cuda import cudnn
        info['cudnn'] = str(cudnn.getVersion())
    except Exception:  # CuPy >= 14 has no cuDNN
        pass
    try:
        device = cupy.cuda.Device(0)
        props = cupy.cuda.runtime.getDeviceProperties(device.id)
        name = props['name']
        info['gpu'] = name.decode() if isinstance(name, bytes) else name
        info['gpu_memory_mib'] = int(props['totalGlobalMem'] // 2 ** 20)
    except Exception:  # no GPU or driver
        pass
    return info


def describe():
    """Versions of Python, Chainer, NumPy, CuPy and cuDNN, the compat patches, and the GPU."""
    info = {
        'python': platform.python_version(),
        'platform': platform.platform(),
        'chainer': chainer.__version__,
        'numpy': numpy.__version__,
    }
    info.update(_cupy_info())
    info['chainer_cudnn_enabled'] = bool(chainer.backends.cuda.cudnn_enabled)
    info['compat_patches'] = list(compat.APPLIED)
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
