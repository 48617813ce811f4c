"""The results folder of a training run: refuse, start over or resume; run; write the record.

An experiment's ``train.py`` holds a :class:`ResultsFolder` for the life of the run, and calls,
in order, its ``resume`` (with ``--resume``), ``run`` and ``finish``.  The finished folder holds
``model.npz``, ``summary.json`` and ``index.html`` besides what the Trainer's extensions wrote
(log, loss.png, previews, snapshots); :mod:`common.runs` reads it back.
"""
import contextlib
import datetime
import errno
import fcntl
import functools
import glob
import json
import os
import re
import shutil
import stat
import sys
import uuid

import numpy

import common  # noqa: F401
import chainer

from common import distributed, env, files, gpu_memory, npz, report, runs
from common import extensions as ext
from common import spectrogram as sp
from common import cli
from common.cli import UsageError

#: A folder holding any of these (or a snapshot) holds a run.
RUN_FILES = ('log', 'summary.json', 'model.npz', 'index.html') + runs.DERIVED_FILES
#: What a finished run writes at its end, and what tools add to it (:data:`common.runs.
#: DERIVED_FILES`): removed when a run (re)starts in the folder, so a folder never claims a
#: finish, or shows numbers of a model, that its log and snapshots have moved past.
FINISHED_FILES = ('model.npz', 'summary.json', 'index.html') + runs.DERIVED_FILES
#: What the run writes while it trains besides the log and the snapshots: the learning curve
#: and, in each preview folder (common/report.py's PREVIEWS), the preview files
#: (common/preview.py).  Removed with the run when a new run replaces it (--force).
LOSS_PLOT = 'loss.png'
PREVIEW_FILES = ('spectrogram_input.png', 'spectrogram_output.png', 'input.wav', 'output.wav',
                 'input_griffinlim.wav')
#: Folders a run fills while it trains, in later versions (issue 22: TensorBoard event files,
#: the preview history); removed, whole, only when a new run replaces the run (--force).
TRAINING_FOLDERS = ('tensorboard', 'previews')
LOCK = '.lock'
#: The lock file holds a pid; a longer one is not ours.
MAX_LOCK_BYTES = 64
#: How deep :func:`_links` looks for symbolic links in a results folder (the folder, its
#: preview folders and the folders in those).
LINK_DEPTH = 3
#: The temporary folder of Chainer's LogReport (utils.tempdir(prefix='log'): 'log' and
#: tempfile's 8 random characters), left behind when a process is killed while it writes.
LOG_REPORT_TEMPORARY = re.compile(r'log[a-z0-9_]{8}')


class ResultsFolder:
    """``--out`` for the life of a run: locked, checked, cleaned; ``with ResultsFolder(...)``.

    On entering, it creates the folder (one-line errors when it is a file, cannot be created
    or is not writable), takes an OS lock on ``.lock`` inside it (a second training process
    is refused in one line; a ``.lock`` that is a link is refused, never written through),
    refuses a folder holding symbolic links (a run writes nothing outside its folder), removes
    leftovers of writes that a killed process left behind, and decides between a new run and
    ``--resume``:

    - a folder holding a run is refused unless ``--resume`` or ``--force`` is given;
    - ``--resume`` takes a snapshot of this experiment only, and one of the run the folder
      holds, unless ``--force`` says to replace that run;
    - when a run continues, the files of its finish (model.npz, summary.json, index.html) and
      what tools added (:data:`common.runs.DERIVED_FILES`) are removed: the run writes its
      finish again when it ends; when a new run replaces one, every file of the old run goes.
      Both happen only once the run can start (:meth:`resume`), so a refusal changes nothing.

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
        self._clear = None  # what the run removes of the folder's old files, once it can start

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
        except OSError as e:
            raise UsageError('{}: cannot write there ({})'.format(out, e.strerror or e))
        self._lock = _open_lock(out)
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock.seek(0)
            holder = self._lock.read(MAX_LOCK_BYTES).strip() or 'unknown'
            self._lock.close()
            self._lock = None
            raise UsageError('{}: another training process (pid {}) is using this results '
                             'folder; wait for it or give another --out'.format(out, holder))
        # Ours now: a regular file with no other name (_open_lock), which only we write.
        self._lock.seek(0)
        self._lock.truncate()
        self._lock.write(str(os.getpid()))
        self._lock.flush()
        links = _links(out)
        if links:
            raise UsageError(
                '{} holds symbolic links ({}{}): a run writes only inside its results folder, '
                'never through a link; remove them, or give another --out'.format(
                    out, ', '.join(links[:4]), ', ...' if len(links) > 4 else ''))
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
            self._clear = functools.partial(_remove_run, out)
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
        keep = [os.path.basename(path)] if inside else []
        if others:  # the snapshot's run replaces another: none of the other's files stay
            self._clear = functools.partial(_remove_run, out, keep=keep)
        else:  # the run continues: what its end wrote, or tools added, is of a model now gone
            self._clear = functools.partial(
                _remove, out, [name for name in FINISHED_FILES if name not in keep])
        self.resume_from = path
        self.run_id = run

    def _other_runs(self, run, snapshot):
        """Files in the folder that belong to another run than ``run``."""
        others = []
        summary = _read_summary(os.path.join(self.out, 'summary.json'), self.args.force)
        if summary is not None and summary.get('run') != run:
            others += [name for name in RUN_FILES
                       if os.path.lexists(os.path.join(self.out, name))]
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
                ext.check_restored(trainer)
            except npz.NpzError as e:
                raise UsageError(str(e), everywhere=True)
            except ValueError as e:  # a state that loaded, but that no run writes
                raise UsageError('{}: {}'.format(self.resume_from, e), everywhere=True)
            self._check_settings(trainer)
            updater = trainer.updater
            previous = updater.previous_epoch_detail or 0.  # None: before the first iteration
            if previous >= self.args.epoch:
                # Chainer's stop trigger fires when the epoch crosses a multiple of --epoch, so
                # a run already past it would train on to the next multiple.
                raise UsageError(
                    '{}: the run is at epoch {:.2f}, past --epoch {}: give --epoch {} or more to '
                    'continue it'.format(self.resume_from, updater.epoch_detail, self.args.epoch,
                                         int(previous) + 1), everywhere=True)
            self.say('resumed from {} (epoch {}, iteration {})'.format(
                self.resume_from, updater.epoch, updater.iteration))
        self._clear_old_files()

    def _check_settings(self, trainer):
        """Refuse to continue a run with other training settings than it trained with (one
        line naming each flag), unless ``--force``: then say so, and keep the change in the run
        (RunIdentity.changes, summary.json's ``hyperparameters.changed_on_resume``)."""
        identity = trainer.get_extension('run')
        now = cli.training_settings(self.args)
        before = identity.settings
        changed = {name: [before[name], now[name]] for name in now
                   if name in before and before[name] != now[name]}
        if changed:
            described = ', '.join('{} {} (now {})'.format(
                cli.flag(name), _flag_value(old), _flag_value(new))
                for name, (old, new) in changed.items())
            if not self.args.force:
                raise UsageError(
                    '{}: the run trained with {}: give the same flags to continue it, or '
                    '--force to continue with the new ones (summary.json records the change)'
                    .format(self.resume_from, described), everywhere=True)
            self.say('warning: continuing the run with other settings than it trained with: '
                     + described)
            identity.changes.append(dict(iteration=int(trainer.updater.iteration), **changed))
        identity.settings = now

    def _clear_old_files(self):
        """Remove what :meth:`_decide` found to remove (rank 0): only once the run can start,
        after its snapshot loaded and passed every check, so a refusal leaves the folder as
        it was."""
        if self.writer and self._clear is not None:
            clear, self._clear = self._clear, None
            clear()

    def run(self, trainer, corpus):
        """Say what trains on what, then ``trainer.run()``; the NaN stop and Ctrl-C become
        one-line errors (the snapshots stay)."""
        self._clear_old_files()  # when resume() did not
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
        except KeyboardInterrupt as e:  # Ctrl-C or SIGTERM (common.cli.Terminated)
            kept = ext.snapshots(args.out)
            e.args = ('while the finished run was written into {}; --resume {} writes it '
                      'again'.format(args.out, kept[-1] if kept else ''),)
            raise
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


def _open_lock(out):
    """``out``/.lock opened for reading and writing, created if absent, never through a link.

    The lock file is opened without following a symbolic link (O_NOFOLLOW) and must be a
    regular file with no other name: a link to a file elsewhere (a folder unpacked from
    elsewhere may hold one) is refused in one line, and its target never written or truncated.
    """
    path = os.path.join(out, LOCK)
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, 'O_CLOEXEC', 0)
    try:
        descriptor = os.open(path, flags, 0o644)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise UsageError('{}: a symbolic link (to {}); a run never writes through a link: '
                             'remove it'.format(path, _target(path)))
        raise UsageError('{}: cannot write there ({})'.format(path, e.strerror or e))
    info = os.fstat(descriptor)
    if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
        os.close(descriptor)
        raise UsageError('{}: {}, not a lock file of this repository: remove it'.format(
            path, 'not a regular file' if not stat.S_ISREG(info.st_mode)
            else 'a file with {} names (a hard link)'.format(info.st_nlink)))
    os.set_blocking(descriptor, True)
    return os.fdopen(descriptor, 'r+')


def _target(path):
    try:
        return os.readlink(path)
    except OSError:
        return '?'


def _links(out, depth=LINK_DEPTH):
    """Symbolic links in ``out`` and its folders, ``depth`` levels down, as 'NAME -> TARGET'."""
    found = []
    for folder, subfolders, names in os.walk(out):  # never follows a link to a folder
        level = os.path.relpath(folder, out).count(os.sep) + (folder != out)
        for name in sorted(subfolders + names):
            path = os.path.join(folder, name)
            if os.path.islink(path):
                found.append('{} -> {}'.format(os.path.relpath(path, out), _target(path)))
        if level + 1 >= depth:
            subfolders[:] = []
    return found


def _remove(out, names):
    """Remove the files ``names`` of ``out`` (a link itself, never its target); a folder where
    a file belongs is refused (UsageError), never removed with what it holds."""
    for name in names:
        path = os.path.join(out, name)
        if os.path.isdir(path) and not os.path.islink(path):
            raise UsageError('{}: a folder where the run keeps a file: move it away, or give '
                             'another --out'.format(path))
        if os.path.lexists(path):
            os.remove(path)


def _remove_run(out, keep=()):
    """Remove every file of the run in ``out`` (but the names in ``keep``), before a new run
    replaces it: what it wrote while it trained, what its end wrote, what tools added, and its
    snapshots.  Files that no run writes stay."""
    names = list(RUN_FILES + FINISHED_FILES) + [LOSS_PLOT]
    names += [os.path.basename(path) for path in ext.snapshots(out)]
    _remove(out, [name for name in dict.fromkeys(names) if name not in keep])
    for sub, _ in report.PREVIEWS:
        folder = os.path.join(out, sub)
        if os.path.isdir(folder):  # links were refused when the folder was opened
            _remove(folder, PREVIEW_FILES)
            if sub:
                with contextlib.suppress(OSError):
                    os.rmdir(folder)  # only when nothing else is in it
    for name in TRAINING_FOLDERS:
        path = os.path.join(out, name)
        if os.path.isdir(path):  # links were refused when the folder was opened
            shutil.rmtree(path)


def _remove_leftovers(out):
    """Temporaries of writes that a killed process left: Chainer's snapshot writer's
    ``tmpsnapshot_iter_*`` folders, LogReport's temporary folder (``log`` and 8 characters,
    holding at most its ``log.json``) and :func:`common.files.atomic_write`'s ``.*.tmp``
    files."""
    for path in glob.glob(os.path.join(out, 'tmpsnapshot_iter_*')):
        shutil.rmtree(path, ignore_errors=True)
    for name in os.listdir(out):
        path = os.path.join(out, name)
        if (LOG_REPORT_TEMPORARY.fullmatch(name) and os.path.isdir(path)
                and not os.path.islink(path) and set(os.listdir(path)) <= {'log.json'}):
            shutil.rmtree(path, ignore_errors=True)
    for path in glob.glob(os.path.join(out, '.*.tmp')) + glob.glob(
            os.path.join(out, '*', '.*.tmp')):
        with contextlib.suppress(OSError):
            os.remove(path)


def _read_summary(path, force=False):
    """summary.json of the folder's run as a dict, or None when there is none.

    Read as the tools read it (:func:`common.runs.read_json`: a regular file of bounded size,
    any JSON error one line).  One that cannot be read, or is not an object, is refused
    (UsageError), unless ``force``: then it is a summary of another run ({}).
    """
    if not os.path.lexists(path):
        return None
    try:
        summary = runs.read_json(path, 'summary.json', runs.MAX_SUMMARY_BYTES)
        if not isinstance(summary, dict):
            raise runs.RunError('{}: not a summary of a run (not a JSON object)'.format(path))
    except runs.RunError as e:
        if force:
            return {}
        raise UsageError('{}: pass --force to replace the run there, or give another --out'
                         .format(e))
    return summary


def _flag_value(value):
    """A setting as it is written on the command line: [10, 15] -> 10,15."""
    if isinstance(value, list):
        return ','.join(str(v) for v in value) or "''"
    return str(value)


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


def hyperparameters(args, optimizer, model, changes=()):
    """What summary.json records of the training: flags, the optimizer's settings, the loss;
    ``changes``: the settings changed on a forced ``--resume`` (RunIdentity.changes)."""
    optimizer = getattr(optimizer, 'actual_optimizer', optimizer)  # under ChainerMN's wrapper
    settings = optimizer.hyperparam.get_dict()
    settings.pop('lr', None)  # the current rate, after any decay: the initial one is --lr
    recorded = {
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
    if changes:  # a run continued with other settings (--resume --force): what changed when
        recorded['changed_on_resume'] = changes
    return recorded


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
        'hyperparameters': hyperparameters(args, optimizer, model,
                                           trainer.get_extension('run').changes),
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
