"""Chainer Trainer extensions of this repository (besides Chainer's own).

- :class:`StopOnNonFinite` stops training when the loss turns NaN or Inf.
- :class:`SnapshotOnInterrupt` turns Ctrl-C into "finish this iteration, snapshot, stop".
- :class:`PeakGPUMemory` follows the CuPy memory pool's size (the record's 3017 MiB card).
- :class:`Preview` (in :mod:`common.preview`) writes spectrogram images and audio.
"""
import math
import signal

import common  # noqa: F401
import chainer
from chainer.training import extension


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
        self.peak_bytes = int(serializer('peak_bytes', self.peak_bytes))
