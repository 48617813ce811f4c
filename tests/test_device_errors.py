"""``--gpu 0`` where CUDA cannot be used: every command that takes --gpu stops with exit status 2
and one line that says why and what to do, never a traceback.

The failure is real, not simulated: in the test environment (no gpu extra) the reason is that CuPy
is not installed; with the gpu extra on a machine without an NVIDIA driver it is the missing
driver.  Where CUDA can be used these tests are skipped: tests/test_gpu.py trains, resumes, runs
the model tools and the bench there.
"""
import os
import subprocess
import sys

import pytest

import common  # noqa: F401
from common import env

from conftest import REPOSITORY

REPORT = env.cuda_report(0)
pytestmark = pytest.mark.skipif(REPORT['cuda_usable'],
                                reason='CUDA can be used here: --gpu 0 works (tests/test_gpu.py)')


def run(*args):
    return subprocess.run([sys.executable] + list(args), capture_output=True, text=True,
                          cwd=REPOSITORY, timeout=600)


@pytest.fixture(scope='module')
def utterance():
    import pysptk.util
    return pysptk.util.example_audio_file()


@pytest.fixture(scope='module')
def latents(bc7db4a2_run, utterance, tmp_path_factory):
    """A latent file of the tiny run, encoded on the CPU (decode reads it before the device)."""
    path = tmp_path_factory.mktemp('latents') / 'a0007.npz'
    result = run('-m', 'common.latent', 'encode', str(bc7db4a2_run), utterance, str(path))
    assert result.returncode == 0, result.stderr
    return path


def commands(run_folder, utterance, latents, out):
    """(program name in the message, argv after the interpreter, file it must leave alone)."""
    return [
        ('train.py', ['bc7db4a2/train.py', '--gpu', '0', '--out', str(out / 'bc')],
         out / 'bc' / 'summary.json'),
        ('train.py', ['c9335bce/train.py', '--gpu', '0', '--out', str(out / 'c9')],
         out / 'c9' / 'summary.json'),
        ('python -m common.evaluate', ['-m', 'common.evaluate', str(run_folder), '--gpu', '0'],
         run_folder / 'evaluation.json'),
        ('python -m common.reconstruct', ['-m', 'common.reconstruct', str(run_folder), utterance,
                                          str(out / 'r.wav'), '--gpu', '0'], out / 'r.wav'),
        ('python -m common.latent', ['-m', 'common.latent', 'encode', str(run_folder), utterance,
                                     str(out / 'l.npz'), '--gpu', '0'], out / 'l.npz'),
        ('python -m common.latent', ['-m', 'common.latent', 'decode', str(run_folder),
                                     str(latents), str(out / 'd.wav'), '--gpu', '0'],
         out / 'd.wav'),
        ('python -m common.compare', ['-m', 'common.compare', str(run_folder), '--out',
                                      str(out / 'compare'), '--gpu', '0'],
         out / 'compare' / 'comparison.md'),
        ('train_step.py', ['bench/train_step.py', '--gpu', '0', '--iterations', '1'], None),
    ]


def test_every_gpu_command_says_in_one_line_why_cuda_cannot_be_used(bc7db4a2_run, utterance,
                                                                    latents, tmp_path):
    expected = '--gpu 0: {}; {}, or use --gpu -1 for the CPU'.format(
        REPORT['cuda_problem'], REPORT['cuda_fix'])
    for prog, argv, output in commands(bc7db4a2_run, utterance, latents, tmp_path):
        before = stat(output)
        result = run(*argv)
        command = ' '.join(argv)
        assert result.returncode == 2, (command, result.stderr[-2000:])
        assert 'Traceback' not in result.stderr, (command, result.stderr[-2000:])
        assert result.stderr.strip() == '{}: error: {}'.format(prog, expected), command
        assert stat(output) == before, command  # nothing written


def stat(path):
    return os.stat(path).st_mtime_ns if path and os.path.exists(path) else None


def test_the_reason_is_what_this_machine_lacks():
    import importlib.util
    import chainer
    if importlib.util.find_spec('cupy') is None:
        assert REPORT['cuda_problem'] == 'CuPy is not installed'
        assert "pip install -e '.[gpu]'" in REPORT['cuda_fix']
    elif not chainer.backends.cuda.available:
        assert 'cannot load the CUDA libraries' in REPORT['cuda_problem']
        assert '[ctk]' in REPORT['cuda_fix']
    elif not os.path.exists('/proc/driver/nvidia/version'):
        assert REPORT['cuda_problem'].startswith('no NVIDIA driver is installed')
        assert REPORT['cuda_runtime'] is not None and REPORT['cuda_driver'] is None
    assert not REPORT['cuda_usable'] and REPORT['gpu'] is None
