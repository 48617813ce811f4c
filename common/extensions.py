"""Chainer Trainer extensions of this repository, and factories of Chainer's own as we set them.

- :class:`StopOnNonFinite` stops training when the loss turns NaN or Inf.
- :class:`SnapshotOnInterrupt` turns Ctrl-C and SIGTERM into "finish this iteration, snapshot,
  stop".
- :class:`RunIdentity` puts the experiment and the run into every snapshot.
- :class:`PeakGPUMemory` follows the GPU memory in use and CuPy's pool (the record's 3017 MiB
  card).
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
from chainer import backend
from chainer.training import extension
from chainer.training import extensions

from common import gpu_path

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
    def __init__(self, value, epoch, iteration, seen_at=None):
        super().__init__('loss became {} at epoch {}, iteration {}{}'.format(
            value, epoch, iteration,
            '' if seen_at in (None, iteration) else ' (read at iteration {})'.format(seen_at)))


class Interrupted(Exception):
    pass


class StopOnNonFinite(extension.Extension):
    """Raise :class:`NonFiniteLoss` when ``key`` turns NaN or Inf, before anything of a broken
    model is written.

    It runs before the log, the previews and the snapshots of the iteration, so the epoch's
    snapshot is not taken of a broken model: the last good snapshot stays the newest one.  It
    runs after ChainerMN's ObservationAggregator (an editor), so under MPI every worker sees
    the same global loss and they all stop at the same iteration.

    On the CPU it reads the loss every iteration.  On the GPU path (CuPy arrays, or NumPy under
    common/gpu_path.py's switch) reading a value to the host waits for the GPU to finish the
    iteration, and the CPU could not prepare the next minibatch meanwhile.  There the extension
    keeps, on the device and without waiting, the first iteration whose loss was not finite, and
    reads it (:meth:`check`) only where something could be written of a broken model or much
    work be lost: at the end of every epoch (where train.py's snapshots, previews, evaluation and
    log entries fall, and where the run ends), every ``interval`` iterations, and before
    :class:`SnapshotOnInterrupt` writes its snapshot.  ``host_reads`` counts the reads.
    """
    trigger = (1, 'iteration')
    priority = extension.PRIORITY_EDITOR - 50

    def __init__(self, key='main/loss', interval=100):
        self.key = key
        self.interval = interval
        self.host_reads = 0
        self._first = None  # on the device: (iteration, epoch, loss) of the first non-finite one

    def __call__(self, trainer):
        updater = trainer.updater
        value = trainer.observation.get(self.key)
        if value is not None:
            array = chainer.as_array(value)
            if not gpu_path.takes_gpu_path(array):
                self.host_reads += 1
                loss = float(array)
                if not math.isfinite(loss):
                    raise NonFiniteLoss(loss, updater.epoch_detail, updater.iteration)
                return
            self._remember(array, updater)
        if updater.is_new_epoch or updater.iteration % self.interval == 0:
            self.check(trainer)

    def _remember(self, loss, updater):
        xp = backend.get_array_module(loss)
        if self._first is None:
            self._first = xp.full(3, -1.0)
        here = xp.asarray([updater.iteration, updater.epoch_detail, 0.0])
        here[2] = loss
        self._first = xp.where((self._first[0] < 0) & ~xp.isfinite(loss), here, self._first)

    def check(self, trainer):
        """Read the first non-finite loss seen so far to the host; raise :class:`NonFiniteLoss`
        if there is one."""
        if self._first is None:
            return
        self.host_reads += 1
        iteration, epoch, loss = (float(v) for v in backend.CpuDevice().send(self._first))
        if iteration >= 0:
            raise NonFiniteLoss(loss, epoch, int(iteration), seen_at=trainer.updater.iteration)


def _extensions_of(trainer, kind):
    return [entry.extension for entry in trainer._extensions.values()
            if isinstance(entry.extension, kind)]


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
            for stop in _extensions_of(trainer, StopOnNonFinite):
                stop.check(trainer)  # a snapshot of a broken model must not become the newest
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
    """The run's GPU memory: the peak in use (``peak_bytes``) and the largest size of CuPy's pool
    (``pool_bytes``), in bytes.

    The peak in use comes from a CuPy memory hook (common/gpu_memory.py) that sees every
    allocation and release of the training loop's thread, evaluation and previews included: what
    a card must hold.  The pool keeps freed blocks for reuse, so its size is larger: what the run
    took from the card.  Neither needs the GPU to finish its work (no synchronization).
    """
    trigger = (1, 'iteration')

    def __init__(self):
        self.peak_bytes = 0
        self.pool_bytes = 0
        self._hook = None

    def initialize(self, trainer):
        from common import gpu_memory
        if self._hook is None:
            self._hook = gpu_memory.PeakInUse()
            self._hook.__enter__()

    def __call__(self, trainer):
        from common import gpu_memory
        self._hook.resynchronize()
        self.peak_bytes = max(self.peak_bytes, self._hook.peak)
        self.pool_bytes = max(self.pool_bytes, gpu_memory.pool().total_bytes())

    def finalize(self):
        if self._hook is not None:
            self._hook.__exit__(None, None, None)
            self._hook = None

    def serialize(self, serializer):
        for key in ('peak_bytes', 'pool_bytes'):
            try:
                setattr(self, key, int(serializer(key, getattr(self, key))))
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
