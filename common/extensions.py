"""Chainer Trainer extensions of this repository, and factories of Chainer's own as we set them.

- :class:`StopOnNonFinite` stops training when the loss turns NaN or Inf.
- :class:`SnapshotOnInterrupt` turns Ctrl-C and SIGTERM into "finish this iteration, snapshot,
  stop".
- :class:`RunIdentity` puts the experiment and the run into every snapshot.
- :class:`PeakGPUMemory` follows the CuPy memory pool's size (the record's 3017 MiB card).
- :func:`snapshot`: Chainer's trainer snapshot, uncompressed, named ``snapshot_iter_N``.
- :func:`loss_plot`: Chainer's PlotReport of the learning curve (``loss.png``), written
  atomically (:class:`AtomicPlotReport`).
- :func:`check_restored`: the state a snapshot restored is one a run writes (``--resume``).
- :func:`every_epochs`: the trigger of snapshots and previews.
- :class:`Preview` (in :mod:`common.preview`) writes spectrogram images and audio.
"""
import functools
import glob
import math
import numbers
import os
import re
import signal

import numpy

import common  # noqa: F401
import chainer
from chainer.training import extension
from chainer.training import extensions
from chainer.training import triggers

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
    return AtomicPlotReport(list(keys), 'epoch', file_name='loss.png',
                            postprocess=_label_loss_plot)


class AtomicPlotReport(extensions.PlotReport):
    """Chainer's PlotReport, its figure written atomically (:func:`common.plot.save_figure`).

    Chainer 7.8.1's PlotReport renders straight into its file, so a kill while it writes leaves
    a truncated image where a good one was, and a link at its name is written through.  The
    figure here is Chainer's, drawn by the same steps; only the write differs.  It keeps
    Chainer's name (snapshot entries ``extensions/PlotReport/...``), so snapshots of either
    load into the other.
    """

    @property
    def default_name(self):
        return 'PlotReport'

    def __call__(self, trainer):
        import matplotlib.pyplot as plt
        from common import plot
        keys = self._y_keys
        summary = self._summary
        summary.add({k: trainer.observation[k] for k in keys if k in trainer.observation})
        if not (trainer.is_before_training or self._trigger(trainer)):
            return
        stats = {name: float(value) for name, value in summary.compute_mean().items()}
        stats['epoch'] = trainer.updater.epoch
        stats['iteration'] = trainer.updater.iteration
        x = stats[self._x_key]
        for k in keys:
            if k in stats:
                self._data[k].append((x, stats[k]))
        figure = plt.figure()
        axes = figure.add_subplot(111)
        axes.set_xlabel(self._x_key)
        if self._grid:
            axes.grid()
        for k in keys:
            if self._data[k]:
                xy = numpy.array(self._data[k])
                axes.plot(xy[:, 0], xy[:, 1], marker=self._marker, label=k)
        if axes.has_data():
            if self._postprocess is not None:
                self._postprocess(figure, axes, summary)
            legend = axes.legend(bbox_to_anchor=(1.05, 1), loc=2, borderaxespad=0.)
            plot.save_figure(figure, os.path.join(trainer.out, self._file_name),
                             bbox_extra_artists=(legend,), bbox_inches='tight')
        else:
            plt.close(figure)
        self._init_summary()


def _label_loss_plot(figure, axes, summary):
    axes.set_xlabel('epoch')
    axes.set_ylabel('mean squared error')
    axes.set_title('learning curve')


def _is_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _is_count(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 0


def check_restored(trainer):
    """ValueError (one line) unless the state a snapshot restored into ``trainer`` is one that
    a run writes: counters that count (iteration, epoch, position, excerpts drawn), finite
    times and trigger states, a LogReport log of entries of numbers, a PlotReport curve of
    (x, y) pairs for each of its keys.

    ``common.npz.load_npz`` checks each entry's shape and kind; this checks what the values
    say, where a wrong one would stop the run later with a traceback (a log that is not a
    list, a negative excerpt count) or make it train on past its end.
    """
    def number(value, what, finite=True):
        value = numpy.asarray(value).item() if isinstance(value, numpy.ndarray) else value
        if not _is_number(value) or (finite and not math.isfinite(value)):
            raise ValueError('{} is {}, not a finite number'.format(what, value))
        return value

    def count(value, what):
        value = numpy.asarray(value).item() if isinstance(value, numpy.ndarray) else value
        if not _is_count(value):
            raise ValueError('{} is {}, not a count (an integer >= 0)'.format(what, value))

    updater = trainer.updater
    count(updater.iteration, 'updater/iteration')
    for name, iterator in getattr(updater, '_iterators', {}).items():  # what it serializes
        what = 'updater/iterator:{}/'.format(name)
        count(iterator.epoch, what + 'epoch')
        position = getattr(iterator, 'current_position', 0)
        count(position, what + 'current_position')
        size = len(getattr(iterator, 'dataset', ()))
        if size and position >= size:
            raise ValueError('{}current_position is {}, past the {} examples of an epoch'.format(
                what, position, size))
        previous = getattr(iterator, '_previous_epoch_detail', -1.)  # -1: no iteration yet
        if number(previous, what + 'previous_epoch_detail') < -1:
            raise ValueError('{}previous_epoch_detail is {}'.format(what, previous))
        if hasattr(getattr(iterator, 'dataset', None), 'drawn'):
            count(iterator.dataset.drawn, what + 'dataset/drawn')
    if number(trainer._snapshot_elapsed_time, 'elapsed_time') < 0:
        raise ValueError('elapsed_time is {}, negative'.format(trainer._snapshot_elapsed_time))
    triggers_of = [('stop_trigger', trainer.stop_trigger)] + [
        ('extension_triggers/' + name, entry.trigger)
        for name, entry in trainer._extensions.items()]
    for name, entry in trainer._extensions.items():
        extension_ = entry.extension
        what = 'extensions/{}/'.format(name)
        if hasattr(extension_, '_trigger'):
            triggers_of.append((what + '_trigger', extension_._trigger))
        if isinstance(extension_, extensions.LogReport):
            _check_log(extension_.log, what + '_log')
        if isinstance(extension_, extensions.PlotReport):
            _check_curves(extension_, what + '_plot_' + extension_._file_name)
    for what, trigger in triggers_of:
        if isinstance(trigger, triggers.IntervalTrigger):
            number(trigger._previous_epoch_detail, what + '/previous_epoch_detail')
            number(trigger._previous_iteration, what + '/previous_iteration')


def _check_log(log, what):
    if not isinstance(log, list):
        raise ValueError('{} is not a list of log entries'.format(what))
    for entry in log:
        if not isinstance(entry, dict):
            raise ValueError('{} holds {!r:.40}, not a log entry (an object)'.format(what, entry))
        for key in ('epoch', 'iteration'):
            if not _is_count(entry.get(key)):
                raise ValueError('{}: an entry\'s "{}" is {!r:.40}, not a count'.format(
                    what, key, entry.get(key)))
        for key, value in entry.items():
            if not _is_number(value):
                raise ValueError('{}: an entry\'s "{}" is {!r:.40}, not a number'.format(
                    what, key, value))


def _check_curves(report, what):
    data = report._data
    if not isinstance(data, dict) or set(data) != set(report._y_keys):
        raise ValueError('{} is not the curves of {}'.format(what, ', '.join(report._y_keys)))
    for key, points in data.items():
        if not (isinstance(points, list) and all(
                isinstance(point, list) and len(point) == 2 and all(map(_is_number, point))
                for point in points)):
            raise ValueError('{}: the curve of {} is not a list of (x, y) numbers'.format(
                what, key))


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
