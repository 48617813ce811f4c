"""bench/gpu_memory.py: the peak memory of a training iteration on the GPU path.

On the CPU it measures the GPU code path on NumPy with tracemalloc (small minibatches here); on a
GPU (``pytest -m gpu``) it measures CuPy's pool, and the record's minibatches must fit the
record's card: at most 2600 MiB in use, proven with the pool capped there.
"""
import json
import subprocess
import sys

import pytest

from common import env
from conftest import REPOSITORY

MIB = 2 ** 20


def bench(*args, timeout=900):
    return subprocess.run([sys.executable, 'bench/gpu_memory.py'] + [str(a) for a in args],
                          capture_output=True, text=True, cwd=REPOSITORY, timeout=timeout)


def measured(tmp_path, *args):
    out = tmp_path / 'figures.json'
    result = bench(*args, '--json', out)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    with open(out) as f:
        figures = json.load(f)
    assert lines[-1] == 'peak {:.0f} MiB'.format(figures['peak_bytes'] / MIB)
    return figures


def test_on_the_cpu_the_bounded_convolutions_need_less_than_stock(tmp_path):
    bounded = measured(tmp_path, 'c9335bce', '--batchsize', 2)
    stock = measured(tmp_path, 'c9335bce', '--batchsize', 2, '--convolutions', 'stock')
    assert bounded['device'] == '@numpy' and bounded['batchsize'] == 2
    assert bounded['convolutions'] == 'bounded' and bounded['pool_bytes'] is None
    weights = 4 * bounded['parameters']
    for figures in (bounded, stock):
        assert [len(figures['iterations'])] == [2]
        # After an iteration: the weights, their gradients and RMSprop's mean squares.
        for iteration in figures['iterations']:
            assert 3 * weights <= iteration['in_use_after_bytes'] <= 3 * weights + MIB
        assert figures['peak_bytes'] > 3 * weights
    # dec1's im2col (32 x 49 x 8192 floats a sample, and tensordot's copy of it) is stock's peak.
    assert stock['peak_bytes'] - bounded['peak_bytes'] > 2 * 2 * 32 * 49 * 8192 * 4 * 0.9


def test_the_minibatch_defaults_to_the_records_and_the_cap_needs_a_gpu(tmp_path):
    result = bench('c9335bce', '--gpu-memory-limit', 2600)
    assert result.returncode == 2
    assert 'give --gpu N' in result.stderr and 'Traceback' not in result.stderr
    result = bench(tmp_path, '--batchsize', 2)
    assert result.returncode != 0 and 'no such file' in result.stderr.splitlines()[-1]


@pytest.mark.parametrize('experiment,batchsize', [('bc7db4a2', 50), ('c9335bce', 100)])
@pytest.mark.gpu
@pytest.mark.skipif(not env.cuda_report(0)['cuda_usable'],
                    reason='no usable GPU: {}'.format(env.cuda_report(0)['cuda_problem']))
def test_the_records_minibatches_fit_the_records_card_on_a_gpu(tmp_path, experiment, batchsize):
    figures = measured(tmp_path, experiment, '--gpu', 0, '--gpu-memory-limit', 2600)
    assert figures['batchsize'] == batchsize and figures['device'] == '@cupy:0'
    assert figures['peak_bytes'] <= 2600 * MIB <= figures['pool_limit_bytes'] + MIB
    assert figures['peak_bytes'] <= figures['pool_bytes'] <= 2600 * MIB
    print('{} at minibatch {}: peak {:.0f} MiB in use, pool {:.0f} MiB'.format(
        experiment, batchsize, figures['peak_bytes'] / MIB, figures['pool_bytes'] / MIB))
