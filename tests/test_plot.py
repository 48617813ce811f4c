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


TRAINING_CURVE = '''
import os
import chainer
from common import extensions as ext

class Model(chainer.Chain):
    def __init__(self):
        super().__init__()
        with self.init_scope():
            self.w = chainer.Parameter(numpy.ones(1, numpy.float32))

    def forward(self, x):
        loss = chainer.functions.sum(self.w * x)
        chainer.report({'loss': loss}, self)
        return loss

model = Model()
optimizer = chainer.optimizers.SGD(lr=0.01)
optimizer.setup(model)
iterator = chainer.iterators.SerialIterator([numpy.ones(1, numpy.float32)] * 4, 2, shuffle=False)
updater = chainer.training.updaters.StandardUpdater(iterator, optimizer)
trainer = chainer.training.Trainer(updater, (40, 'epoch'), out=os.path.dirname(PATH))
trainer.extend(ext.loss_plot(('main/loss',)))
trainer.run()
'''


def test_the_learning_curve_of_a_run_is_written_atomically(tmp_path):
    """loss.png, Chainer's PlotReport's figure, was rendered straight into its file: a kill or a
    full disk while it was written left a truncated image where a good one was."""
    path = tmp_path / 'loss.png'
    result = write(path, TRAINING_CURVE)
    assert result.returncode == 0, result.stderr
    previous = path.read_bytes()
    assert previous.startswith(b'\x89PNG') and len(previous) > 8192
    result = write(path, TRAINING_CURVE, limit=4096)  # the disk fills after 4 KiB
    assert result.returncode != 0 and 'File too large' in result.stderr, result.stderr[-3000:]
    assert path.read_bytes() == previous
    assert sorted(p.name for p in tmp_path.iterdir()) == ['loss.png']  # no temporary left


def test_the_learning_curve_keeps_chainers_name_in_snapshots():
    """Snapshots of runs written before (``extensions/PlotReport/...``) load into it."""
    import chainer
    from common import extensions as ext
    optimizer = chainer.optimizers.SGD()
    optimizer.setup(chainer.links.Linear(1, 1))
    trainer = chainer.training.Trainer(chainer.training.updaters.StandardUpdater(
        chainer.iterators.SerialIterator([0], 1), optimizer), (1, 'epoch'))
    trainer.extend(ext.loss_plot())
    assert isinstance(trainer.get_extension('PlotReport'), chainer.training.extensions.PlotReport)
