"""The GPU path (``--gpu 0``): run by ``pytest -m gpu`` on a machine where Chainer can use CUDA,
skipped elsewhere with the environment report's reason (``python -m common.env``).

- Both experiments' whole nets on CuPy against the CPU path (the fast convolutions), in test
  and training mode: output, loss, every parameter gradient, BatchNormalization's statistics.
- A tiny training run with ``--gpu 0`` writes the complete results folder.
- A GPU snapshot resumes on the CPU, and a CPU snapshot on the GPU.
- The model tools run on the GPU.
- ``bench/train_step.py --gpu 0`` reports the peak in use and CuPy's pool at minibatch 50, for
  Chainer's own convolutions and the bounded ones.
- A run's summary.json records the peak in use, the pool, the pool's cap and TF32.

Small batches keep it to a few minutes.  bench/gpu_machine.sh runs it on a GPU machine.
"""
import copy
import json
import shutil
import subprocess
import sys

import numpy
import pytest

import common  # noqa: F401
import chainer
import chainer.functions as F

from common import env
from common.objectives import Reconstruction
from conftest import REPOSITORY, TINY_RUN, load_experiment_module, run_experiment

REPORT = env.cuda_report(0)
pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not REPORT['cuda_usable'],
                                 reason='no usable GPU: {}'.format(REPORT['cuda_problem']))]

#: Largest difference allowed between GPU and CPU, relative to the largest magnitude of each
#: array.  Both compute in float32 in different orders; on the CPU, moving every activation of
#: bc7db4a2 by one unit in the last place moved its outputs and test-mode gradients by up to
#: 1.5e-5 of their scale.  A wrong kernel is off by the order of the values themselves.
TOLERANCE = 1e-3
#: Training-mode gradients are compared with a float64 reference instead: there
#: BatchNormalization's backward subtracts nearly equal sums (bc7db4a2's 4096-channel boxes see
#: 32 values per channel at minibatch 2), and float32 gradients of any implementation carry
#: errors of their own.  Measured on the CPU at minibatch 2: up to 3.7e-2 of their scale from
#: float64 (bc7db4a2's dec3/conv/W, fast and stock convolutions alike; 8e-3 at minibatch 8),
#: under 2e-5 for c9335bce.
TRAINING_GRADIENT_TOLERANCE = 1e-1


def tiny_run_flags(gpu):
    """conftest's TINY_RUN (minibatch 2, 2 epochs of 4 excerpts) on device ``gpu``."""
    flags = list(TINY_RUN)
    flags[flags.index('--gpu') + 1] = str(gpu)
    return flags


def run(*args):
    return subprocess.run([sys.executable] + list(args), capture_output=True, text=True,
                          cwd=REPOSITORY, timeout=600)


def relative_error(expected, actual):
    """Largest difference, relative to the largest magnitude of ``expected``."""
    scale = float(numpy.abs(expected).max()) or 1.0
    return float(numpy.abs(numpy.asarray(actual) - expected).max()) / scale


def float64_copy(model):
    model = copy.deepcopy(model)
    for param in model.params():
        param.array = param.array.astype(numpy.float64)
    return model


def forward_backward(model, x, device, train):
    """Output, loss, gradients and BatchNormalization statistics of one step, as NumPy arrays."""
    x = device.send(x)
    with chainer.using_config('train', train):
        y = model.predictor(x)
        loss = F.mean_squared_error(y, x)  # what Reconstruction computes
    model.cleargrads()
    loss.backward()
    values = {'output': y.array, 'loss': loss.array}
    values.update({'gradient of ' + name: param.grad for name, param in model.namedparams()})
    for name, link in model.namedlinks():
        for key in ('avg_mean', 'avg_var'):
            if hasattr(link, key):
                values['{} {}'.format(name, key)] = getattr(link, key)
    return {key: chainer.backend.CpuDevice().send(value) for key, value in values.items()}


@pytest.mark.parametrize('train', [False, True], ids=['test-mode', 'training-mode'])
@pytest.mark.parametrize('experiment', ['bc7db4a2', 'c9335bce'])
def test_the_net_computes_on_the_gpu_what_it_computes_on_the_cpu(experiment, train):
    numpy.random.seed(0)
    cpu = Reconstruction(load_experiment_module(experiment).Net())
    gpu = copy.deepcopy(cpu)
    gpu.to_device('@cupy:0')
    assert gpu.device.xp is chainer.backends.cuda.cupy
    x = numpy.random.RandomState(1).uniform(0, 6.9, (2, 1, 32, 256)).astype(numpy.float32)
    cpu_device = chainer.get_device('@numpy')
    if train:  # the float64 reference of the gradients, with Chainer's stock convolutions
        with chainer.using_config('use_fast_convolution', False):
            exact = forward_backward(float64_copy(cpu), x.astype(numpy.float64), cpu_device, train)
    expected = forward_backward(cpu, x, cpu_device, train)
    actual = forward_backward(gpu, x, chainer.get_device('@cupy:0'), train)
    assert sorted(actual) == sorted(expected)
    assert sum(key.startswith('gradient of ') for key in expected) == len(list(cpu.params()))
    for key, want in expected.items():
        assert numpy.isfinite(want).all() and numpy.isfinite(actual[key]).all(), key
        where = '{} of {}, {}'.format(key, experiment, 'training' if train else 'test')
        if train and key.startswith('gradient of '):
            cpu_error = relative_error(exact[key], want)
            gpu_error = relative_error(exact[key], actual[key])
            assert max(cpu_error, gpu_error) <= TRAINING_GRADIENT_TOLERANCE, \
                '{}: GPU {:.1e}, CPU {:.1e} from float64'.format(where, gpu_error, cpu_error)
        else:
            error = relative_error(want, actual[key])
            assert error <= TOLERANCE, '{}: GPU {:.1e} from the CPU'.format(where, error)


@pytest.fixture(scope='module')
def gpu_run(tmp_path_factory):
    """The results folder of a finished tiny bc7db4a2 run with --gpu 0."""
    out = tmp_path_factory.mktemp('gpu') / 'bc7db4a2'
    result = run_experiment('bc7db4a2', *tiny_run_flags(0), '--out', str(out),
                            '--gpu-memory-limit', '2600')
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def test_a_gpu_run_writes_the_complete_results_folder(gpu_run):
    import test_train
    test_train.test_a_run_writes_every_result_file_with_real_content(gpu_run)  # as on the CPU
    with open(gpu_run / 'summary.json') as f:
        summary = json.load(f)
    assert summary['device'] == '@cupy:0'
    assert summary['gpu'] == REPORT['gpu']
    assert 3 * 102054657 * 4 / 2 ** 20 < summary['peak_gpu_memory_mib'] \
        <= summary['gpu_memory_pool_mib'] <= summary['gpu_memory_limit_mib'] == 2600
    assert summary['tf32'] is False and summary['environment']['cupy_tf32'] == '0'
    assert summary['environment']['cuda_usable'] is True
    assert summary['environment']['gpu'] == REPORT['gpu']


@pytest.mark.parametrize('limit,where', [
    (100, 'Out of memory allocating'),  # less than the weights (389 MiB): before training
    (800, 'training stopped: out of GPU memory'),  # the weights, not their gradients: in it
])
def test_a_run_past_its_memory_cap_stops_with_one_line(tmp_path, limit, where):
    result = run_experiment('bc7db4a2', *tiny_run_flags(0), '--out', str(tmp_path / 'capped'),
                            '--gpu-memory-limit', str(limit))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and where in lines[0] and 'Traceback' not in result.stderr


def resume(folder, tmp_path, gpu, *flags):
    """A copy of a finished 2-epoch run continued to epoch 3 on device ``gpu``; its summary."""
    out = tmp_path / 'resumed'
    shutil.copytree(folder, out)
    result = run_experiment('bc7db4a2', *tiny_run_flags(gpu), '--epoch', '3', '--out', str(out),
                            '--resume', *flags)
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'resumed from' in result.stdout
    with open(out / 'log') as f:
        assert [entry['epoch'] for entry in json.load(f)] == [1, 2, 3]
    with open(out / 'summary.json') as f:
        return json.load(f)


def test_a_gpu_snapshot_resumes_on_the_cpu(gpu_run, tmp_path):
    summary = resume(gpu_run, tmp_path, -1)
    assert summary['device'] == '@numpy'
    assert numpy.isfinite(summary['final_validation_mse'])


def test_a_cpu_snapshot_resumes_on_the_gpu_with_tf32(bc7db4a2_run, tmp_path):
    summary = resume(bc7db4a2_run, tmp_path, 0, '--tf32')
    assert summary['device'] == '@cupy:0' and summary['peak_gpu_memory_mib'] > 0
    assert summary['tf32'] is True and summary['environment']['cupy_tf32'] == '1'
    assert numpy.isfinite(summary['final_validation_mse'])


def test_the_model_tools_run_on_the_gpu(gpu_run, tmp_path):
    import pysptk.util
    utterance = pysptk.util.example_audio_file()
    for argv in (['common.reconstruct', str(gpu_run), utterance, str(tmp_path / 'r.wav')],
                 ['common.latent', 'encode', str(gpu_run), utterance, str(tmp_path / 'l.npz')],
                 ['common.latent', 'decode', str(gpu_run), str(tmp_path / 'l.npz'),
                  str(tmp_path / 'd.wav')]):
        result = run('-m', *argv, '--gpu', '0')
        assert result.returncode == 0, (argv, result.stderr[-2000:])
    assert (tmp_path / 'r.wav').stat().st_size == (tmp_path / 'd.wav').stat().st_size


def test_the_bench_reports_the_peak_in_use_and_cupys_pool_at_minibatch_50(tmp_path):
    out = tmp_path / 'bench.json'
    result = run('bench/train_step.py', 'bc7db4a2', '--gpu', '0', '--batchsize', '50',
                 '--iterations', '1', '--json', str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'peak in use' in result.stdout and 'CuPy pool' in result.stdout
    with open(out) as f:
        bench = json.load(f)
    assert bench['device'] == '@cupy:0' and bench['batchsize'] == 50
    for path in ('stock', 'fast'):
        peak, pool = bench['peak_memory_bytes'][path], bench['pool_bytes'][path]
        # At least the weights, their gradients and RMSprop's mean squares are in use.
        assert 3 * 102054657 * 4 <= peak <= pool
        print('bc7db4a2, minibatch 50, {} convolutions: peak {:.0f} MiB in use, CuPy pool {:.0f} '
              'MiB (record: a 3017 MiB card)'.format(path, peak / 2 ** 20, pool / 2 ** 20))
    # dec1's im2col and tensordot's copy of it (2 x 2450 MiB) are what the bounded path saves.
    assert bench['peak_memory_bytes']['stock'] - bench['peak_memory_bytes']['fast'] > 3 * 2 ** 30
