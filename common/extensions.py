"""Chainer Trainer extensions of this repository, and factories of Chainer's own as we set them.

- :class:`StopOnNonFinite` stops training when the loss turns NaN or Inf.
- :class:`SnapshotOnInterrupt` turns Ctrl-C and SIGTERM into "finish this iteration, snapshot,
  stop".
- :class:`RunIdentity` puts the experiment and the run into every snapshot.
- :class:`PeakGPUMemory` follows the CuPy memory pool's size (the record's 3017 MiB card).
- :func:`snapshot`: Chainer's trainer snapshot, uncompressed, named ``snapshot_iter_N``.
- :func:`loss_plot`: Chainer's PlotReport of the learning curve (``loss.png``).
- :func:`every_epochs`: the trigger of snapshots and previews.
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


def snapshot(n_retains=1):
    """Chainer's trainer snapshot (everything --resume needs), the newest ``n_retains`` kept.

    A snapshot holds the model, the optimizer's state (RMSprop's running mean square: as large
    as the model), the iterators' positions and the extensions' states (log, plot).
    """
    return extensions.snapshot(savefun=save_npz, filename=SNAPSHOT, n_retains=n_retains)


def every_epochs(interval, final_epoch):
    """Trigger: at the end of every ``interval``-th epoch and of the final epoch."""
    return lambda trainer: trainer.updater.is_new_epoch and (
        trainer.updater.epoch % interval == 0 or trainer.updater.epoch >= final_epoch)


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

    It runs before the log, the previews and the snapshots of the iteration, so the epoch's
    snapshot is not taken of a broken model: the last good snapshot stays the newest one.  It
    runs after ChainerMN's ObservationAggregator (an editor), so under MPI every worker sees
    the same global loss and they all stop at the same iteration.
    """
    trigger = (1, 'iteration')
    priority = extension.PRIORITY_EDITOR - 50

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
    """On Ctrl-C (SIGINT) or SIGTERM, let the iteration finish, write ``snapshot``, stop training.

    SIGTERM is what ``timeout``, Slurm, Kubernetes and ``mpiexec`` send; it is treated like
    Ctrl-C.  The extension runs after every other extension of the iteration (evaluation, log,
    previews, the epoch's own snapshot), so the snapshot holds the iteration complete and a
    resumed run ends with exactly the log of an uninterrupted one.  A second signal ends the
    process at once, as usual.  ``snapshot`` is the run's snapshot extension, called directly
    unless it has just written this iteration's snapshot.

    Under MPI (``comm``, a ChainerMN communicator) the workers agree every iteration on whether
    any of them was signalled, so they all stop at the same iteration and none is left waiting
    in a collective; only the worker given a ``snapshot`` (rank 0) writes it.
    """
    trigger = (1, 'iteration')
    priority = -1000  # below Chainer's snapshot extensions (-100): the very last of an iteration
    SIGNALS = {signal.SIGINT: 'Ctrl-C', signal.SIGTERM: 'SIGTERM'}

    def __init__(self, snapshot, comm=None):
        self.snapshot = snapshot
        self.comm = comm
        self.requested = None  # the name of the signal received
        self._previous_handlers = {}

    def initialize(self, trainer):
        for signum in self.SIGNALS:
            try:
                self._previous_handlers[signum] = signal.signal(signum, self._request)
            except ValueError:  # not the main thread: leave the signals alone
                pass

    def _request(self, signum, frame):
        self.requested = self.SIGNALS[signum]
        signal.signal(signum, signal.default_int_handler if signum == signal.SIGINT
                      else signal.SIG_DFL)

    def __call__(self, trainer):
        requested = self.requested
        if self.comm is not None:  # the names of the signals received, reduced by max()
            from mpi4py import MPI
            requested = self.comm.mpi_comm.allreduce(requested or '', op=MPI.MAX) or None
        if requested:
            if self.snapshot is not None and not os.path.exists(
                    os.path.join(trainer.out, SNAPSHOT.format(trainer))):
                self.snapshot(trainer)
            raise Interrupted('interrupted ({}) at epoch {:.2f}, iteration {}'.format(
                requested, trainer.updater.epoch_detail, trainer.updater.iteration))

    def finalize(self):
        for signum, handler in self._previous_handlers.items():
            signal.signal(signum, handler)
        self._previous_handlers = {}


class RunIdentity(extension.Extension):
    """Which experiment and which run a trainer snapshot belongs to (``extensions/run/...``).

    It does nothing during training; its state goes into every snapshot, so ``--resume`` can
    refuse a snapshot of another experiment, or one that would overwrite another run's folder.
    """
    trigger = (1, 'epoch')

    def __init__(self, experiment_id, run_id):
        self.experiment = experiment_id
        self.run = run_id or ''  # a string always: None would be saved as a pickled object

    def __call__(self, trainer):
        pass

    def serialize(self, serializer):
        self.experiment = str(serializer('experiment', self.experiment))
        self.run = str(serializer('run', self.run))


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


class StepDecay(extension.Extension):
    """--lr-decay-epochs: the optimizer's lr is ``lr * factor ** k`` once k of ``epochs`` are done.

    Computed from the updater's epoch, so it holds no state: a resumed run (``--resume``, with
    the same or a longer ``--epoch``) follows the same schedule.  (Chainer's ExponentialShift on a
    ManualScheduleTrigger would not: the Trainer skips the initializer of an extension whose
    trigger has ``finished``, so a run resumed past the last step went back to ``lr``.)
    """
    trigger = 1, 'epoch'
    priority = extension.PRIORITY_READER  # after observe_lr has logged the ending epoch's rate

    def __init__(self, lr, epochs, factor):
        self.lr, self.epochs, self.factor = lr, sorted(epochs), factor

    def rate(self, epoch):
        """The learning rate of the epoch after ``epoch`` completed epochs."""
        return self.lr * self.factor ** sum(1 for e in self.epochs if e <= epoch)

    def initialize(self, trainer):
        self(trainer)

    def __call__(self, trainer):
        trainer.updater.get_optimizer('main').lr = self.rate(trainer.updater.epoch)
