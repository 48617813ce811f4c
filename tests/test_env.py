"""The environment report (``python -m common.env``, summary.json) and quiet imports, in
whatever environment the tests run: without CuPy, with the gpu extra but no GPU, or on a GPU."""
import importlib.util
import os
import subprocess
import sys

import common  # noqa: F401
import chainer

from common import compat, env

from conftest import REPOSITORY

#: Keys summary.json has always had (tests, reports and readers rely on them).
KEPT_KEYS = ['python', 'platform', 'chainer', 'numpy', 'cupy', 'cudnn', 'gpu', 'gpu_memory_mib',
             'chainer_cudnn_enabled', 'compat_patches']
CUDA_KEYS = ['cuda_usable', 'cuda_problem', 'cuda_fix', 'cuda_runtime', 'cuda_driver',
             'nvidia_driver', 'gpu_count', 'gpu_compute_capability', 'nccl', 'cudnn_in_use',
             'silenced_warnings']


def python(*args):
    return subprocess.run([sys.executable] + list(args), capture_output=True, text=True,
                          cwd=REPOSITORY, timeout=300)


def test_import_common_then_chainer_prints_nothing():
    result = python('-c', 'import common; import chainer; import chainer.links')
    assert result.returncode == 0 and result.stdout == '' and result.stderr == '', result.stderr


def test_the_report_says_whether_chainer_can_use_cuda_and_why_not():
    info = env.describe()
    assert set(KEPT_KEYS + CUDA_KEYS) <= set(info)
    if info['cuda_usable']:
        assert info['cuda_problem'] is None and info['cuda_fix'] is None
        assert info['gpu'] and info['gpu_memory_mib'] > 0 and info['gpu_count'] >= 1
        assert info['cuda_runtime'] and info['cuda_driver']
    else:
        assert info['cuda_problem'] and info['cuda_fix'] and info['gpu'] is None
    if importlib.util.find_spec('cupy') is None:
        assert info['cupy'] is None and info['cuda_problem'] == 'CuPy is not installed'
    else:
        assert info['cupy'] == compat.cupy_distribution()[1]
    assert info['cudnn_in_use'] == (info['cuda_usable'] and chainer.backends.cuda.cudnn_enabled)


def test_only_cupy_14s_missing_cudnn_is_silenced():
    cupy = compat.cupy_distribution()
    if cupy is not None and int(cupy[1].split('.')[0]) >= 14:
        assert compat.SILENCED == ['cuDNN is not enabled']
        assert os.environ['CHAINER_CUDNN'] == '0'  # Chainer's switch: cuDNN off, no warning
        assert not chainer.backends.cuda.cudnn_enabled  # CuPy 14 has no cuDNN
    else:
        assert compat.SILENCED == [] and 'CHAINER_CUDNN' not in os.environ


def test_python_m_common_env_prints_the_report():
    result = python('-m', 'common.env')
    assert result.returncode == 0 and result.stderr == '', result.stderr
    lines = dict(line.split(None, 1) for line in result.stdout.splitlines())
    info = env.describe()
    assert lines['cuda_usable'] == str(info['cuda_usable'])
    assert lines['cuda_problem'] == (info['cuda_problem'] or '-')
    assert lines['chainer'] == '7.8.1'
