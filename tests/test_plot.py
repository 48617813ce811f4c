"""Figures are written atomically: a write that fails half-way keeps the previous figure.

The failure is real: the writing process runs under a file-size limit (RLIMIT_FSIZE, the
kernel's EFBIG, as a full disk's ENOSPC), so the PNG cannot be written whole.
"""
import subprocess
import sys

import pytest

from conftest import REPOSITORY

WRITERS = {
    'spectrogram image (plot, previews)': (
        'from common import plot\n'
        'plot.save_spectrogram(PATH, numpy.random.default_rng(0).random((400, 256)) * 6, "x")\n'),
    'learning curves (compare)': (
        'import types\nfrom common import compare\n'
        'log = [{"epoch": e, "main/loss": 1.0 / e, "validation/main/loss": 1.1 / e}'
        ' for e in range(1, 200)]\n'
        'compare.plot_learning_curves(PATH, [types.SimpleNamespace(label="run", log=log)])\n'),
}


def write(path, code, limit=None):
    prefix = 'import numpy\nPATH = {!r}\n'.format(str(path))
    if limit:
        prefix += ('import resource, signal\nsignal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n'
                   'resource.setrlimit(resource.RLIMIT_FSIZE, ({0}, {0}))\n'.format(limit))
    return subprocess.run([sys.executable, '-c', prefix + code], capture_output=True, text=True,
                          cwd=REPOSITORY, timeout=300)


@pytest.mark.parametrize('writer', sorted(WRITERS))
def test_a_figure_that_cannot_be_written_whole_leaves_the_previous_one(writer, tmp_path):
    path = tmp_path / 'figure.png'
    result = write(path, WRITERS[writer])
    assert result.returncode == 0, result.stderr
    previous = path.read_bytes()
    assert previous.startswith(b'\x89PNG') and len(previous) > 8192
    result = write(path, WRITERS[writer], limit=4096)  # the disk fills after 4 KiB
    assert result.returncode != 0 and 'File too large' in result.stderr, result.stderr
    assert path.read_bytes() == previous
    assert sorted(p.name for p in tmp_path.iterdir()) == ['figure.png']  # no temporary left
