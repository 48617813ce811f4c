"""Chainer Trainer extensions of this repository, and factories of Chainer's own as we set them.

- :class:`StopOnNonFinite` stops training when the loss turns NaN or Inf.
- :class:`SnapshotOnInterrupt` turns Ctrl-C into "finish this iteration, snapshot, stop".
- :class:`PeakGPUMemory` follows the CuPy memory pool's size (the record's 3017 MiB card).
- :func:`snapshot`: Chainer's trainer snapshot, uncompressed, named ``snapshot_iter_N``.
- :func:`loss_plot`: Chainer's PlotReport of the learning curve (``loss.png``).
- :class:`Preview` (in :mod:`common.preview`) writes spectrogram images and audio.
"""
import functools
import glob
import math
import os
import re
import signal

import common  # noqa: F401
import chainer
from chainer.training import extension
from chainer.training import extensions

#: Snapshot file names; :func:`snapshots` finds them.
SNAPSHOT = 'snapshot_iter_{.updater.iteration}'
#: Uncompressed: 400 MB of float32 weights hardly compress, and zlib costs seconds per epoch.
save_npz = functools.partial(chainer.serializers.save_npz, compression=False)


def snapshot(n_retains=2):
    """Chainer's trainer snapshot (everything --resume needs), the newest ``n_retains`` kept."""
    return extensions.snapshot(savefun=save_npz, filename=SNAPSHOT, n_retains=n_retains)


def snapshots(out):
    """Snapshot files in ``out``, oldest first (by iteration)."""
    found = glob.glob(os.path.join(out, 'snapshot_iter_*'))
    found = [path for path in found if re.fullmatch(r'snapshot_iter_\d+', os.path.basename(path))]
    return sorted(found, key=lambda path: int(path.rsplit('_', 1)[1]))


def loss_plot(keys=('main/loss', 'validation/main/loss')):
    """The learning curve, ``loss.png``: ``keys`` per epoch (Chainer's PlotReport)."""
    return extensions.PlotReport(list(keys), 'epoch', file_name='loss.png',
                                 postprocess=_label_loss_plot)


def _label_loss_plot(figure, axes, summary):
    axes.set_xlabel('epoch')
    axes.set_ylabel('mean squared error')
    axes.set_title('learning curve')


class NonFiniteLoss(Exception):
    def __init__(self, value, epoch, iteration):
        super().__init__('loss became {} at epoch {}, iteration {}'.format(value, epoch, iteration))


class Interrupted(Exception):
    pass


class StopOnNonFinite(extension.Extension):
    """Raise :class:`NonFiniteLoss` as soon as ``key`` is NaN or Inf.

    It runs before every other extension of the iteration, so the epoch's snapshot is not
    taken of a broken model: the last good snapshot stays the newest one.
    """
    trigger = (1, 'iteration')
    priority = extension.PRIORITY_WRITER + 100

    def __init__(self, key='main/loss'):
        self.key = key

    def __call__(self, trainer):
        value = trainer.observation.get(self.key)
        if value is None:
            return
        value = float(chainer.as_array(value))  # one scalar from the GPU per iteration
        if not math.isfinite(value):
            updater = trainer.updater
            raise NonFiniteLoss(value, updater.epoch_detail, updater.iteration)


class SnapshotOnInterrupt(extension.Extension):
    """On the first Ctrl-C, let the iteration finish, write ``snapshot`` and stop training.

    A second Ctrl-C interrupts at once, as usual.  ``snapshot`` is a snapshot extension
    (chainer.training.extensions.snapshot), called directly.
    """
    trigger = (1, 'iteration')
    priority = extension.PRIORITY_WRITER + 50

    def __init__(self, snapshot):
        self.snapshot = snapshot
        self.requested = False
        self._previous_handler = None

    def initialize(self, trainer):
        try:
            self._previous_handler = signal.signal(signal.SIGINT, self._request)
        except ValueError:  # not the main thread: leave Ctrl-C alone
            self._previous_handler = None

    def _request(self, signum, frame):
        self.requested = True
        signal.signal(signal.SIGINT, signal.default_int_handler)

    def __call__(self, trainer):
        if self.requested:
            self.snapshot(trainer)
            raise Interrupted('interrupted at epoch {:.2f}, iteration {}'.format(
                trainer.updater.epoch_detail, trainer.updater.iteration))

    def finalize(self):
        if self._previous_handler is not None:
            signal.signal(signal.SIGINT, self._previous_handler)
            self._previous_handler = None


class PeakGPUMemory(extension.Extension):
    """Largest size of CuPy's default memory pool seen after any iteration, in bytes."""
    trigger = (1, 'iteration')

    def __init__(self):
        self.peak_bytes = 0

    def __call__(self, trainer):
        import cupy
        self.peak_bytes = max(self.peak_bytes, cupy.get_default_memory_pool().total_bytes())

    def serialize(self, serializer):
        try:
            self.peak_bytes = int(serializer('peak_bytes', self.peak_bytes))
        except KeyError:  # a snapshot written on the CPU (no peak in it) resumed on a GPU
            if not isinstance(serializer, chainer.serializer.Deserializer):
                raise
