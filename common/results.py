"""The results folder of a training run: refuse, start over or resume; run; write the record.

An experiment's ``train.py`` holds a :class:`ResultsFolder` for the life of the run, and calls,
in order, its ``resume`` (with ``--resume``), ``run`` and ``finish``.  The finished folder holds
``model.npz``, ``summary.json`` and ``index.html`` besides what the Trainer's extensions wrote
(log, loss.png, previews, snapshots); :mod:`common.runs` reads it back.
"""
import contextlib
import datetime
import fcntl
import glob
import json
import os
import shutil
import sys
import uuid

import numpy

import common  # noqa: F401
import chainer

from common import distributed, env, files, gpu_memory, npz, report
from common import extensions as ext
from common import spectrogram as sp
from common.cli import UsageError

#: A folder holding any of these (or a snapshot) holds a run.
RUN_FILES = ('log', 'summary.json', 'model.npz', 'index.html')
#: What a finished run writes at its end: removed when a run (re)starts in the folder, so a
#: folder never claims a finish that its log and snapshots have moved past.
FINISHED_FILES = ('model.npz', 'summary.json', 'index.html')
LOCK = '.lock'


class ResultsFolder:
    """``--out`` for the life of a run: locked, checked, cleaned; ``with ResultsFolder(...)``.

    On entering, it creates the folder (one-line errors when it is a file, cannot be created
    or is not writable), takes an OS lock on ``.lock`` inside it (a second training process
    is refused in one line), removes leftovers of writes that a killed process left behind,
    and decides between a new run and ``--resume``:

    - a folder holding a run is refused unless ``--resume`` or ``--force`` is given;
    - ``--resume`` takes a snapshot of this experiment only, and one of the run the folder
      holds, unless ``--force`` says to replace that run;
    - when a run (re)starts, the files of a finished run (model.npz, summary.json,
      index.html) are removed: the run writes them again when it ends.

    ``resume_from`` is then the snapshot to load (or None) and ``run_id`` the run's identity
    (a new one, or the snapshot's).  If the block fails before anything but the lock was
    written in a folder this created, the folder is removed again.

    Under MPI (``comm``, a ChainerMN communicator) only rank 0 touches the folder, says what
    happens and writes the record; it hands its decision (or its refusal) to every worker.
    The methods :meth:`resume`, :meth:`run` and :meth:`finish` are the run's steps.
    """

    def __init__(self, args, experiment_id, comm=None):
        self.out = args.out
        self.args = args
        self.experiment_id = experiment_id
        self.comm = comm
        self.writer = distributed.is_writer(comm)
        self.resume_from = None
        self.run_id = None
        self._lock = None
        self._created = False

    def __enter__(self):
        refusal = None
        if self.writer:
            try:
                self._open()
                self._decide()
            except UsageError as e:
                self._close(failed=True)
                refusal = str(e)
            except BaseException:
                self._close(failed=True)
                raise
        refusal, self.resume_from, self.run_id = distributed.broadcast(
            self.comm, (refusal, self.resume_from, self.run_id))
        if refusal:
            raise UsageError(refusal, everywhere=True)
        return self

    def __exit__(self, kind, value, traceback):
        self._close(failed=kind is not None)
        return False

    def _open(self):
        out = self.out
        if os.path.exists(out) and not os.path.isdir(out):
            raise UsageError('{}: --out is a file, not a folder'.format(out))
        self._created = not os.path.exists(out)
        try:
            os.makedirs(out, exist_ok=True)
            self._lock = open(os.path.join(out, LOCK), 'a+')
        except OSError as e:
            raise UsageError('{}: cannot write there ({})'.format(out, e.strerror or e))
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock.seek(0)
            holder = self._lock.read().strip() or 'unknown'
            self._lock.close()
            self._lock = None
            raise UsageError('{}: another training process (pid {}) is using this results '
                             'folder; wait for it or give another --out'.format(out, holder))
        self._lock.seek(0)
        self._lock.truncate()
        self._lock.write(str(os.getpid()))
        self._lock.flush()
        _remove_leftovers(out)

    def _decide(self):
        args, out = self.args, self.out
        held = [name for name in RUN_FILES if os.path.exists(os.path.join(out, name))]
        held += [os.path.basename(path) for path in ext.snapshots(out)]
        if not args.resume:
            if held and not args.force:
                if ext.snapshots(out):
                    advice = ': pass --resume to continue it or --force to start over'
                else:  # e.g. a finished run of --snapshots-kept 0: --resume has nothing to load
                    advice = (' but no snapshot to continue it from: pass --force to start '
                              'over, or give another --out')
                raise UsageError('{} already holds a run ({}){}'.format(
                    out, ', '.join(held[:4]), advice))
            _remove(out, held)
            self.run_id = uuid.uuid4().hex
            return
        path = args.resume
        if path == 'latest':
            found = ext.snapshots(out)
            if not found:
                raise UsageError('{}: no snapshot to resume from'.format(out))
            path = found[-1]
        if not os.path.isfile(path):
            raise UsageError('{}: no such snapshot'.format(path))
        experiment, run = snapshot_identity(path)
        if experiment != self.experiment_id:
            raise UsageError('{}: a snapshot of experiment {}, not {}; resume it with {}/train.py'
                             .format(path, experiment, self.experiment_id, experiment))
        others = self._other_runs(run, path)
        if others and not args.force:
            raise UsageError(
                '{} holds another run ({}) than the snapshot {}: pass --force to replace it, '
                'or give another --out'.format(out, ', '.join(others[:4]), path))
        inside = os.path.abspath(os.path.dirname(path)) == os.path.abspath(out)
        _remove(out, [name for name in held if name in others or name in FINISHED_FILES
                      if not (inside and name == os.path.basename(path))])
        self.resume_from = path
        self.run_id = run

    def _other_runs(self, run, snapshot):
        """Files in the folder that belong to another run than ``run``."""
        others = []
        summary = _read_summary(os.path.join(self.out, 'summary.json'))
        if summary is not None and summary.get('run') != run:
            others += [name for name in RUN_FILES if os.path.exists(os.path.join(self.out, name))]
        for path in ext.snapshots(self.out):
            if os.path.abspath(path) == os.path.abspath(snapshot):
                continue
            try:
                if snapshot_identity(path)[1] != run:
                    others.append(os.path.basename(path))
            except UsageError:
                others.append(os.path.basename(path))
        if not others and summary is None and os.path.exists(os.path.join(self.out, 'log')) \
                and not ext.snapshots(self.out):
            others.append('log')  # a log of a run that never wrote a snapshot: not this one
        return sorted(set(others), key=others.index)

    def say(self, message):
        """Print ``message`` once (on rank 0 under MPI)."""
        if self.writer:
            print(message)

    def resume(self, trainer):
        """With ``--resume``: load the snapshot (model, optimizer, iterators, extensions)."""
        if self.resume_from:
            try:
                npz.load_npz(self.resume_from, trainer, what='the trainer of {}'.format(
                    self.experiment_id))
            except npz.NpzError as e:
                raise UsageError(str(e), everywhere=True)
            self.say('resumed from {} (epoch {}, iteration {})'.format(
                self.resume_from, trainer.updater.epoch, trainer.updater.iteration))

    def run(self, trainer, corpus):
        """Say what trains on what, then ``trainer.run()``; the NaN stop and Ctrl-C become
        one-line errors (the snapshots stay)."""
        net = trainer.updater.get_optimizer('main').target.predictor
        self.say('{}: {:,} parameters, training on {}{}, {} files ({:.2f} h) from {}'.format(
            self.experiment_id, net.count_params(), net.device,
            '' if self.comm is None else ' x {} workers'.format(self.comm.size),
            corpus.n_files, corpus.hours, corpus.root))
        warning = report.experiment_texts(self.experiment_id)['warning']
        if warning:  # the run's page will show the README's texts as this experiment's
            self.say('warning: ' + warning)
        try:
            trainer.run(show_loop_exception_msg=False)
        except ext.NonFiniteLoss as e:
            kept = ext.snapshots(trainer.out)
            raise UsageError('training stopped: {}; last good snapshot: {}'.format(
                e, kept[-1] if kept else 'none'), everywhere=True)
        except ext.Interrupted as e:
            raise UsageError('{}; snapshot written, continue with --resume'.format(e),
                             everywhere=True)
        except OSError as e:  # a full disk, a folder made read-only or removed under the run
            kept = ext.snapshots(trainer.out)
            raise UsageError('cannot write into {} ({}{}); newest snapshot: {}'.format(
                trainer.out, e.strerror or e, ': ' + str(e.filename) if e.filename else '',
                kept[-1] if kept else 'none'))
        except gpu_memory.out_of_memory_errors() as e:  # past --gpu-memory-limit, or the card's
            kept = ext.snapshots(trainer.out)
            raise UsageError('training stopped: out of GPU memory ({}); newest snapshot: {}'
                             .format(env.one_line(e), kept[-1] if kept else 'none'))

    def finish(self, trainer, corpus):
        """Write log, model.npz, summary.json and index.html of a run that ended (rank 0).

        Each is written atomically (a kill leaves the old file or none, never half of one), the
        model before the summary: a folder with summary.json is a finished run.  With
        ``--snapshots-kept 0`` the snapshots are removed last.
        """
        if not self.writer:
            return None
        args = self.args
        net = trainer.updater.get_optimizer('main').target.predictor
        try:
            # The log as the LogReport holds it: a run resumed from a finished snapshot into
            # another folder ends without an iteration, so its LogReport never wrote there.
            with files.atomic_write(os.path.join(args.out, 'log'), 'w') as f:
                json.dump(trainer.get_extension('LogReport').log, f, indent=4)
            with files.atomic_write(os.path.join(args.out, 'model.npz')) as f:
                ext.save_npz(f, net)
            summary = write_summary(os.path.join(args.out, 'summary.json'), self.experiment_id,
                                    args, corpus, trainer, self.comm)
            report.update_pages(args.out)  # index.html: the run's page, and results/index.html
        except OSError as e:
            kept = ext.snapshots(args.out)
            raise UsageError('cannot write the finished run into {} ({}); --resume {} writes '
                             'it again'.format(args.out, e.strerror or e,
                                               kept[-1] if kept else ''))
        if args.snapshots_kept == 0:
            _remove(args.out, [os.path.basename(path) for path in ext.snapshots(args.out)])
        print('finished in {:.1f} min: training MSE {}, validation MSE {}; results in {}'.format(
            trainer.elapsed_time / 60,
            summary['final_training_mse'], summary['final_validation_mse'], args.out))
        return summary

    def _close(self, failed):
        if self._lock is None:
            return
        if failed and self._created and os.listdir(self.out) == [LOCK]:
            os.remove(os.path.join(self.out, LOCK))
            os.rmdir(self.out)
        self._lock.close()  # releases the lock
        self._lock = None


def _remove(out, names):
    for name in names:
        path = os.path.join(out, name)
        if os.path.exists(path):
            os.remove(path)


def _remove_leftovers(out):
    """Temporaries of writes that a killed process left: Chainer's snapshot writer's
    ``tmpsnapshot_iter_*`` folders and :func:`common.files.atomic_write`'s ``.*.tmp`` files."""
    for path in glob.glob(os.path.join(out, 'tmpsnapshot_iter_*')):
        shutil.rmtree(path, ignore_errors=True)
    for path in glob.glob(os.path.join(out, '.*.tmp')) + glob.glob(
            os.path.join(out, '*', '.*.tmp')):
        with contextlib.suppress(OSError):
            os.remove(path)


def _read_summary(path):
    """summary.json as a dict, or None (absent or unreadable)."""
    try:
        with open(path) as f:
            summary = json.load(f)
    except (OSError, ValueError):
        return None
    return summary if isinstance(summary, dict) else None


def snapshot_identity(path):
    """(experiment, run) of a trainer snapshot, read without unpickling; UsageError if ``path``
    is not a readable trainer snapshot of this repository."""
    try:
        with npz.Archive(path, 'snapshot', max_bytes=None) as archive:
            if 'updater/iteration' not in archive:
                raise UsageError('{}: not a trainer snapshot (no updater/iteration)'.format(path))
            identity = []
            for key in ('extensions/run/experiment', 'extensions/run/run'):
                if key not in archive:
                    raise UsageError('{}: a snapshot without a run identity (written by an '
                                     'older version of this repository, or not by it)'
                                     .format(path))
                value = archive.read(key, max_bytes=1000)
                if value.dtype.kind != 'U' or value.ndim != 0:
                    raise UsageError('{}: not a trainer snapshot of this repository (bad {})'
                                     .format(path, key))
                identity.append(str(value))
            return tuple(identity)
    except npz.NpzError as e:
        raise UsageError(str(e))


def hyperparameters(args, optimizer, model):
    """What summary.json records of the training: flags, the optimizer's settings, the loss."""
    optimizer = getattr(optimizer, 'actual_optimizer', optimizer)  # under ChainerMN's wrapper
    settings = optimizer.hyperparam.get_dict()
    settings.pop('lr', None)  # the current rate, after any decay: the initial one is --lr
    return {
        'epoch': args.epoch, 'batchsize': args.batchsize, 'lr': args.lr,
        'lr_decay_epochs': list(getattr(args, 'lr_decay_epochs', None) or []),
        'lr_decay_factor': getattr(args, 'lr_decay_factor', None),
        'optimizer': type(optimizer).__name__, **settings,
        'loss': getattr(model, 'LOSS', type(model).__name__), 'seed': args.seed,
        'excerpts_per_epoch': args.excerpts_per_epoch,
        'validation_excerpts': args.validation_excerpts,
        'preview_interval': args.preview_interval,
        'snapshot_interval': args.snapshot_interval,
        'snapshots_kept': args.snapshots_kept,
    }


def write_summary(path, experiment_id, args, corpus, trainer, comm=None):
    optimizer = trainer.updater.get_optimizer('main')
    model = optimizer.target
    net = model.predictor
    device = net.device
    on_gpu = device.xp is not numpy
    log = trainer.get_extension('LogReport').log
    last = log[-1] if log else {}
    peak = pool = None
    if on_gpu:  # the peak in use, and the size CuPy's pool reached (freed blocks included)
        memory = trainer.get_extension('peak_gpu_memory')
        peak, pool = memory.peak_bytes / 2 ** 20, memory.pool_bytes / 2 ** 20
    environment = env.describe()
    summary = {
        'experiment': experiment_id,
        'run': trainer.get_extension('run').run,
        'net': '{}/net.py:{}'.format(experiment_id, type(net).__name__),
        'hyperparameters': hyperparameters(args, optimizer, model),
        'data_parallel': distributed.describe(comm, distributed.communicator_name(args)),
        'parameters': int(net.count_params()),
        'input_shape': [1, sp.FRAMES, sp.BINS],
        'latent_shape': list(_latent_shape(net, device)),
        'dataset': {
            'path': os.path.abspath(corpus.root),
            'files': corpus.n_files,
            'train_files': len(corpus.train_files),
            'validation_files': len(corpus.validation_files),
            'skipped_files': len(corpus.skipped),
            'hours': round(corpus.hours, 4),
        },
        'device': str(device),
        'gpu': environment['gpu'] if on_gpu else None,
        'peak_gpu_memory_mib': None if peak is None else round(peak, 1),
        'gpu_memory_pool_mib': None if pool is None else round(pool, 1),
        'gpu_memory_limit_mib': getattr(args, 'gpu_memory_limit', None),
        'tf32': bool(getattr(args, 'tf32', False)),
        'environment': environment,
        'iterations': trainer.updater.iteration,
        'epochs_completed': trainer.updater.epoch,
        'training_hours': round(trainer.elapsed_time / 3600, 4),
        'final_training_mse': last.get('main/loss'),
        'final_validation_mse': last.get('validation/main/loss'),
        'finished': datetime.datetime.now().isoformat(timespec='seconds'),
        'command': ' '.join([os.path.relpath(sys.argv[0])] + sys.argv[1:]),
    }
    with files.atomic_write(path, 'w') as f:
        json.dump(summary, f, indent=2)
    return summary


def _latent_shape(net, device):
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        x = device.send(numpy.zeros((1, 1, sp.FRAMES, sp.BINS), dtype=numpy.float32))
        return net.encode(x).shape[1:]
