"""Chainer Trainer extensions of this repository, and factories of Chainer's own as we set them.

- :class:`StopOnNonFinite` stops training when the loss turns NaN or Inf.
- :class:`SnapshotOnInterrupt` turns Ctrl-C and SIGTERM into "finish this iteration, snapshot,
  stop".
- :class:`RunIdentity` puts the experiment, the run and its settings into every snapshot.
- :class:`PeakGPUMemory` follows the GPU memory in use and CuPy's pool (the record's 3017 MiB
  card).
- :func:`snapshot`: Chainer's trainer snapshot, uncompressed, named ``snapshot_iter_N``.
- :func:`loss_plot`: Chainer's PlotReport of the learning curve (``loss.png``), written
  atomically (:class:`AtomicPlotReport`).
- :func:`check_restored`: the state a snapshot restored is one a run writes (``--resume``).
- :func:`every_epochs`: the trigger of snapshots and previews.
- :class:`Preview` (in :mod:`common.preview`) writes spectrogram images and audio.
"""
import functools
import glob
import json
import math
import numbers
import os
import re
import signal

import numpy

import common  # noqa: F401
import chainer
from chainer import backend
from chainer.training import extension
from chainer.training import extensions
from chainer.training import triggers

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
    """Which experiment and which run a trainer snapshot belongs to (``extensions/run/...``), and
    the settings it trains with.

    It does nothing during training; its state goes into every snapshot, so ``--resume`` can
    refuse a snapshot of another experiment, or one that would overwrite another run's folder,
    and can tell when a run is continued with other settings (``--batchsize``, ``--lr``, ...)
    than it trained with (common.results).

    ``settings``: a dict of JSON values (``common.cli.training_settings``); after a snapshot
    loads, those the run trained with ({} for a snapshot written before they were kept).
    ``changes``: the settings changed on a forced ``--resume``, as a list of
    ``{"iteration": i, "flag": [before, after], ...}``, kept in every later snapshot.
    """
    trigger = (1, 'epoch')

    def __init__(self, experiment_id, run_id, settings=None):
        self.experiment = experiment_id
        self.run = run_id or ''  # a string always: None would be saved as a pickled object
        self.settings = dict(settings or {})
        self.changes = []

    def __call__(self, trainer):
        pass

    def serialize(self, serializer):
        self.experiment = str(serializer('experiment', self.experiment))
        self.run = str(serializer('run', self.run))
        # JSON text: numbers, lists and None keep their types, and nothing is pickled.
        for name, empty in (('settings', {}), ('changes', [])):
            try:
                text = str(serializer(name, json.dumps(getattr(self, name), sort_keys=True)))
            except KeyError:  # a snapshot from before settings were kept: unknown
                setattr(self, name, empty)
                continue
            try:
                value = json.loads(text)
            except ValueError:
                raise ValueError('extensions/run/{} is not JSON'.format(name))
            if type(value) is not type(empty):
                raise ValueError('extensions/run/{} is not a JSON {}'.format(
                    name, 'object' if name == 'settings' else 'list'))
            setattr(self, name, value)


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
