"""Data-parallel training with ChainerMN on the CPU: 2 MPI processes (mpiexec) of the naive
communicator, tiny sizes.  The processes are real ones, started by MPICH's mpiexec."""
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy
import pytest

import chainer

from conftest import (REPOSITORY, TINY_RUN, global_minibatch, load_experiment_module, read_json,
                      run_experiment, wait_for, without_times)
from common import objectives
from common import extensions as ext

# ChainerMN runs under mpiexec: slow, so left out of the quick check
# (README.md: pytest -m "not slow").
pytestmark = pytest.mark.slow

MPIEXEC = shutil.which('mpiexec', path=os.path.dirname(sys.executable)) or shutil.which('mpiexec')
THREAD_VARIABLES = ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS')
#: Two workers share a global minibatch of 2 (TINY_RUN's), one excerpt each.
TWO_WORKERS = TINY_RUN + ['--communicator', 'naive']


def mpiexec(workers, *command):
    """``mpiexec -n WORKERS python COMMAND``, one BLAS thread a worker (2 workers of 2 threads
    each on 2 cores would wait for each other's threads: 3x slower)."""
    threads = [arg for name in THREAD_VARIABLES for arg in ('-genv', name, '1')]
    return [MPIEXEC, '-n', str(workers)] + threads + [sys.executable] + list(command)


def train_command(workers, experiment_id, *flags):
    return mpiexec(workers, os.path.join(REPOSITORY, experiment_id, 'train.py'), *flags)


def run(command, timeout=900):
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                          cwd=REPOSITORY)


def start(command):
    """A command in its own process group, so the test can signal or kill all of it."""
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=REPOSITORY, start_new_session=True)


def workers_left(out):
    """Training processes still running for ``out``."""
    found = subprocess.run(['pgrep', '-f', 'train.py.*--out {}$'.format(out)],
                           capture_output=True, text=True)
    return found.stdout.split()


def one_line_error(result, *words):
    assert result.returncode == 2, (result.stdout[-2000:], result.stderr[-3000:])
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and 'Traceback' not in result.stderr, result.stderr[-3000:]
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def test_mpiexec_is_installed_with_the_test_extra():
    assert MPIEXEC, "no mpiexec: pip install -e '.[mpi]' (or '.[test]') brings MPICH"
    import mpi4py
    assert mpi4py.__version__


# -- the same training as one process --------------------------------------------------------

def single_process_gradients(experiment_id, x):
    numpy.random.seed(0)
    with chainer.using_config('dtype', x.dtype):
        model = objectives.Reconstruction(load_experiment_module(experiment_id).Net())
        loss = model(x)
    model.cleargrads()
    loss.backward()
    return float(loss.array), {name: param.grad.astype(numpy.float64)
                               for name, param in model.namedparams()}


def relative_error(gradients, reference):
    """|g - ref| / |ref| over all parameters together (one number for the whole model)."""
    difference = sum(((gradients[name] - reference[name]) ** 2).sum() for name in reference)
    return numpy.sqrt(difference / sum((g ** 2).sum() for g in reference.values()))


@pytest.mark.parametrize('experiment_id, size, dtypes', [
    ('c9335bce', 50, ('float32', 'float64')),  # the record's 2 x 25 against 1 x 50
    ('bc7db4a2', 4, ('float64',)),             # the experiment's net, 2 x 2 against 1 x 4
])
def test_two_workers_give_the_loss_and_gradients_of_one_process_on_the_global_minibatch(
        experiment_id, size, dtypes, tmp_path):
    result = run(mpiexec(2, os.path.join(REPOSITORY, 'tests', 'mpi', 'gradients.py'),
                         experiment_id, str(size), str(tmp_path / 'mn'), *dtypes))
    assert result.returncode == 0, result.stderr[-3000:]
    x64 = global_minibatch(size, numpy.float64)
    loss64, reference = single_process_gradients(experiment_id, x64)
    for dtype in dtypes:
        workers = numpy.load(str(tmp_path / 'mn-{}.npz'.format(dtype)))
        gradients = {name: workers['grad' + name].astype(numpy.float64) for name in reference}
        if dtype == 'float64':
            # Exact up to the order of summation: the same computation.
            assert float(workers['loss']) == pytest.approx(loss64, rel=1e-12)
            for name in reference:
                scale = numpy.abs(reference[name]).max()
                assert numpy.abs(gradients[name] - reference[name]).max() <= 1e-9 * scale, name
        else:
            # float32: as close to float64 as one process's own float32 computation is (on
            # this net both are about 3e-4 of the gradient's norm; per layer up to 8e-3).
            loss32, single32 = single_process_gradients(experiment_id, x64.astype(dtype))
            assert float(workers['loss']) == pytest.approx(loss64, rel=1e-6)
            assert loss32 == pytest.approx(loss64, rel=1e-6)
            assert relative_error(single32, reference) < 1e-3
            assert relative_error(gradients, reference) < 1e-3
    # MultiNodeBatchNormalization's running statistics: those of the global minibatch, but for
    # the unbiased-variance factor m / (m - 1), where ChainerMN counts one worker's m.
    numpy.random.seed(0)
    with chainer.using_config('dtype', numpy.float64):
        net = load_experiment_module(experiment_id).Net()
        outputs = dict(net.trace(x64))  # each box's output: the shape its BatchNormalization sees
    for box, output in outputs.items():
        if not hasattr(net[box], 'bn'):
            continue
        bn = net[box].bn
        name = '/predictor/{}/bn'.format(box)
        numpy.testing.assert_allclose(workers[name.join(('state', '/avg_mean'))], bn.avg_mean,
                                      rtol=1e-9, atol=1e-12)
        m = output.size // output.shape[1]
        factor = (m / 2 / (m / 2 - 1)) / (m / (m - 1))
        expected = bn.decay + (bn.avg_var - bn.decay) * factor  # from the initial variance 1
        numpy.testing.assert_allclose(workers[name.join(('state', '/avg_var'))], expected,
                                      rtol=1e-9)


# -- runs ------------------------------------------------------------------------------------

@pytest.fixture(scope='module')
def two_worker_run(tmp_path_factory):
    """A finished 2-worker c9335bce run of 3 epochs."""
    out = tmp_path_factory.mktemp('mpi') / 'run'
    result = run(train_command(2, 'c9335bce', *TWO_WORKERS, '--epoch', '3', '--out', str(out)))
    assert result.returncode == 0, result.stderr[-3000:]
    return out, result


def test_a_two_worker_run_writes_one_complete_results_folder(two_worker_run):
    out, result = two_worker_run
    for name in ('log', 'loss.png', 'model.npz', 'summary.json', 'index.html', 'output.wav',
                 'spectrogram_output.png', 'utterance/output.wav'):
        assert (out / name).is_file(), name
    summary = read_json(out / 'summary.json')
    assert summary['data_parallel'] == {'communicator': 'naive', 'workers': 2}
    assert summary['hyperparameters']['batchsize'] == 2  # the global minibatch
    log = read_json(out / 'log')
    assert [entry['iteration'] for entry in log] == [2, 4, 6]  # 4 excerpts / 2 a step, global
    assert summary['final_validation_mse'] == log[-1]['validation/main/loss']
    # Only rank 0 speaks and writes.
    assert result.stdout.count('finished in') == 1
    assert result.stdout.count('usable files') == 1
    assert 'x 2 workers' in result.stdout
    chainer.serializers.load_npz(str(out / 'model.npz'), load_experiment_module('c9335bce').Net())


def test_a_killed_two_worker_run_resumes_with_two_workers_or_one(two_worker_run, tmp_path):
    whole, _ = two_worker_run
    out = tmp_path / 'killed'
    flags = TWO_WORKERS + ['--epoch', '3', '--out', str(out)]
    process = start(train_command(2, 'c9335bce', *flags))
    wait_for(out / 'snapshot_iter_2', process)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    deadline = time.time() + 30
    while workers_left(out) and time.time() < deadline:
        time.sleep(0.5)
    assert not workers_left(out)
    other_n = tmp_path / 'one-worker'
    shutil.copytree(out, other_n)

    resumed = run(train_command(2, 'c9335bce', *flags, '--resume'))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert without_times(read_json(out / 'log')) == without_times(read_json(whole / 'log'))

    one = run_experiment('c9335bce', *TINY_RUN, '--epoch', '3', '--out', str(other_n), '--resume')
    assert one.returncode == 0, one.stderr[-3000:]
    log = read_json(other_n / 'log')
    assert [entry['iteration'] for entry in log] == [2, 4, 6]
    assert read_json(other_n / 'summary.json')['data_parallel']['workers'] == 1

    # ... and a snapshot of one process continues with two.
    two = run(train_command(2, 'c9335bce', *TWO_WORKERS, '--epoch', '4', '--out', str(other_n),
                            '--resume'))
    assert two.returncode == 0, two.stderr[-3000:]
    assert [entry['iteration'] for entry in read_json(other_n / 'log')] == [2, 4, 6, 8]
    assert read_json(other_n / 'summary.json')['data_parallel']['workers'] == 2


@pytest.mark.parametrize('signum', [signal.SIGINT, signal.SIGTERM])
def test_a_signal_to_mpiexec_stops_every_worker_at_one_iteration(signum, tmp_path):
    out = tmp_path / 'signalled'
    process = start(train_command(2, 'c9335bce', *TWO_WORKERS, '--epoch', '200',
                                  '--out', str(out)))
    wait_for(out / 'snapshot_iter_2', process)
    process.send_signal(signum)  # to mpiexec, which forwards it to the workers
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 2, stderr[-3000:]
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and 'interrupted' in lines[0] and '--resume' in lines[0], stderr
    assert not workers_left(out)
    stopped_at = int(re.search(r'iteration (\d+)', lines[0]).group(1))
    assert ext.snapshots(str(out))[-1].endswith('snapshot_iter_{}'.format(stopped_at))


def test_the_nan_stop_ends_every_worker(tmp_path):
    out = tmp_path / 'diverged'
    result = run(train_command(2, 'c9335bce', *TWO_WORKERS, '--lr', '1e30', '--out', str(out)))
    assert result.returncode == 2 and 'Traceback' not in result.stderr, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if 'error' in line]
    assert len(errors) == 1, result.stderr  # besides NumPy's overflow warnings on the way
    assert 'training stopped: loss became' in errors[0] and 'last good snapshot' in errors[0]
    assert not workers_left(out)


# -- one-line errors -------------------------------------------------------------------------

def test_bad_communicator_settings_are_one_line_errors(tmp_path):
    out = str(tmp_path / 'never')
    blocked = run([sys.executable, '-c',
                   'import runpy, sys; sys.modules["mpi4py"] = None; '
                   'sys.argv = ["train.py"] + sys.argv[1:]; sys.path.insert(0, "c9335bce"); '
                   'runpy.run_path("c9335bce/train.py", run_name="__main__")',
                   '--communicator', 'naive', '--out', out])
    one_line_error(blocked, '--communicator needs mpi4py', "pip install -e '.[mpi]'")
    one_line_error(run(train_command(2, 'c9335bce', '--communicator', 'pure_nccl', '--out', out)),
                   'pure_nccl', 'needs GPUs', 'naive')
    one_line_error(run(train_command(1, 'c9335bce', '--communicator', 'nccl2', '--out', out)),
                   'unknown communicator "nccl2"', 'pure_nccl')
    one_line_error(run(train_command(2, 'c9335bce', '--communicator', '--batchsize', '3',
                                     '--out', out)),
                   '--batchsize 3', 'divisible by the 2 workers')
    assert not os.path.exists(out)


def test_an_epoch_the_workers_cannot_share_equally_is_refused(tmp_path):
    """Each of N workers draws ceil(E / N) excerpts an epoch: with E = 5 and 2 workers an epoch
    was 6 excerpts while summary.json recorded 5."""
    out = str(tmp_path / 'never')
    one_line_error(run(train_command(2, 'c9335bce', '--communicator', '--batchsize', '2',
                                     '--excerpts-per-epoch', '5', '--out', out)),
                   '--excerpts-per-epoch 5', 'divisible by the 2 workers')
    assert not os.path.exists(out)
