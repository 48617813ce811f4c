"""Shared fixtures: experiment nets loaded by path (experiment folders are scripts, not packages)."""
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time

import numpy
import pytest

import common  # noqa: F401  (Chainer compatibility before anything imports chainer)

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Commands the tests start (train.py, python -m common.*, mpiexec) import this checkout's
# common/, as the tests do, and not the one an editable install of another checkout points to.
os.environ['PYTHONPATH'] = os.pathsep.join(
    [REPOSITORY] + [path for path in os.environ.get('PYTHONPATH', '').split(os.pathsep) if path])


def load_experiment_module(experiment_id, name='net'):
    """An experiment folder's net.py or train.py as a module (train.py's ``from net import
    Net`` finds the net of its own folder, as when it runs as a script)."""
    from common import runs
    return runs.import_experiment_file(os.path.join(REPOSITORY, experiment_id), name)


@pytest.fixture(scope='session')
def bc7db4a2_net():
    return load_experiment_module('bc7db4a2').Net


# A tiny but complete training run: the full network on CPU at minibatch 2.
TINY_RUN = ['--gpu', '-1', '--epoch', '2', '--batchsize', '2', '--excerpts-per-epoch', '4',
            '--validation-excerpts', '2', '--snapshot-interval', '1']


def run_experiment(experiment_id, *flags, timeout=600):
    """``python <experiment>/train.py FLAGS`` as a user runs it; returns the CompletedProcess."""
    return subprocess.run([sys.executable, os.path.join(REPOSITORY, experiment_id, 'train.py')]
                          + list(flags), capture_output=True, text=True, timeout=timeout,
                          cwd=REPOSITORY)


def start_experiment(experiment_id, *flags):
    """``python <experiment>/train.py FLAGS`` started in the background (stderr piped)."""
    return subprocess.Popen(
        [sys.executable, os.path.join(REPOSITORY, experiment_id, 'train.py')] + list(flags),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=REPOSITORY)


def wait_for(path, process, timeout=300):
    """Wait until ``path`` exists, while ``process`` runs."""
    deadline = time.time() + timeout
    while not path.exists():
        assert process.poll() is None, process.stderr.read()
        assert time.time() < deadline, 'no {} after {} s'.format(path, timeout)
        time.sleep(0.1)


def global_minibatch(size, dtype=numpy.float32):
    """A fixed minibatch of ``size`` real spectrograms: the demo corpus's validation excerpts."""
    from common import dataset
    corpus = dataset.load_corpus(dataset.DEMO_CORPUS, log=lambda message: None)
    return dataset.ValidationExcerpts(corpus.validation_waves, size, seed=0).spectrograms \
        .astype(dtype)


def forward_backward(link, x, gy, **config):
    """One forward and backward pass of ``link`` on ``x`` with output gradient ``gy``, under
    ``chainer.using_config`` of ``config``: (output Variable, input gradient, {parameter path:
    gradient}).  The stock-vs-fast comparisons of the fast CPU paths run through it."""
    import chainer
    with contextlib.ExitStack() as stack:
        for key, value in config.items():
            stack.enter_context(chainer.using_config(key, value))
        link.cleargrads()
        xv = chainer.Variable(x.copy())
        y = link(xv)
        y.grad = gy
        y.backward()
    return y, xv.grad, {path: param.grad.copy() for path, param in link.namedparams()}


def read_json(path):
    with open(path) as f:
        return json.load(f)


def without_times(log):
    """A LogReport log without its wall-clock entries: what must repeat exactly."""
    return [{key: value for key, value in entry.items() if key != 'elapsed_time'}
            for entry in log]


@pytest.fixture(scope='session', autouse=True)
def private_corpus_cache(tmp_path_factory):
    """Decoded-corpus caches of the test session go to a temporary folder, not ~/.cache."""
    os.environ['XDG_CACHE_HOME'] = str(tmp_path_factory.mktemp('cache'))


def _finished_run(tmp_path_factory, experiment_id):
    out = tmp_path_factory.mktemp('results') / experiment_id
    result = run_experiment(experiment_id, *TINY_RUN, '--out', str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    return out


@pytest.fixture(scope='session')
def bc7db4a2_run(tmp_path_factory):
    """The results folder of a finished tiny bc7db4a2 run on the demo corpus."""
    return _finished_run(tmp_path_factory, 'bc7db4a2')


@pytest.fixture(scope='session')
def c9335bce_run(tmp_path_factory):
    """The results folder of a finished tiny c9335bce run on the demo corpus (same flags)."""
    return _finished_run(tmp_path_factory, 'c9335bce')


def copy_repository(destination):
    """A copy of this working tree as a fresh clone has it (code, experiments, demo corpus, the
    committed results folders without models or snapshots; no .git, .venv, caches or local
    runs) at ``destination``, for tests that follow the README in a repository of their own:
    its train.py scripts and ``python -m common.*`` (run from it) use its own common/."""
    results = os.path.join(REPOSITORY, 'results')

    def ignored(folder, names):
        folder = os.path.abspath(folder)
        top = folder == REPOSITORY
        in_results = folder == results or folder.startswith(results + os.sep)
        return [name for name in names
                if name in ('__pycache__', '.pytest_cache', '.cache')
                or name.endswith('.egg-info')
                or (top and name in ('.git', '.venv', 'build', 'dist'))
                or (folder == results and name.endswith(('-demo', '-rerun')))
                or (in_results and (name in ('model.npz', '.lock')
                                    or name.startswith(('snapshot_iter_', 'tmpsnapshot_'))))]
    shutil.copytree(REPOSITORY, destination, ignore=ignored, symlinks=True)
    os.makedirs(os.path.join(destination, 'results'), exist_ok=True)
    return destination
