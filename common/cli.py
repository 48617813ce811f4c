"""The command line of an experiment's ``train.py``: the flags every experiment takes, its device,
and bad input reported as one line.

An experiment's ``train.py`` builds its parser with :func:`training_parser`, giving the record's
own hyper-parameters (epochs, minibatch, learning rate) as the flags' defaults, and runs its
``main`` through :func:`exit_status`.
"""
import argparse
import contextlib
import math
import os
import signal
import sys

import numpy

import common  # noqa: F401
import chainer

from common import audio, dataset, env, gpu_memory, protocol, runs


#: A snapshot of bc7db4a2 is 816 MB (the model and RMSprop's state, 408 MB each): one every 5
#: epochs, the newest kept, bounds both the disk and the epochs a hard kill can lose.
SNAPSHOT_INTERVAL = 5
SNAPSHOTS_KEPT = 1


class UsageError(Exception):
    """Bad flags, results folder or snapshot: reported as one line, exit status 2.

    ``everywhere``: under MPI, every worker raises it at the same point (a refusal handed out
    by rank 0, a stop they agreed on), so rank 0 alone reports it and all exit together.
    Any other error on one worker ends them all (the others would wait in a collective).
    """

    def __init__(self, message, everywhere=False):
        super().__init__(message)
        self.everywhere = everywhere


class Terminated(KeyboardInterrupt):
    """SIGTERM outside the training loop (the loop snapshots and stops on its own): handled as
    Ctrl-C is, so every clean-up that Ctrl-C gets (temporary files, a folder made for nothing)
    happens, and the command ends with a line instead of silently."""


@contextlib.contextmanager
def sigterm_as_interrupt():
    """Within the block, SIGTERM raises :class:`Terminated`; a second one ends the process at
    once, as usual.  Outside the main thread, nothing changes."""
    def terminate(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        raise Terminated()
    try:
        previous = signal.signal(signal.SIGTERM, terminate)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


#: Errors a command reports as one line ("train.py: error: ..."), never as a traceback (a GPU out
#: of memory, past --gpu-memory-limit, included).
ONE_LINE_ERRORS = (UsageError, dataset.CorpusError, audio.AudioError) + \
    gpu_memory.out_of_memory_errors()


def default_out(experiment_id):
    """The results folder of a run without ``--out``: ``results/<id>`` of the repository,
    whatever the working directory (``cd bc7db4a2 && python train.py`` must not write into the
    experiment's record).  A relative ``--out`` given on the command line stays relative to the
    working directory, as usual."""
    return os.path.join(common.REPOSITORY, 'results', experiment_id)


def training_parser(experiment_id, description, *, epoch, batchsize, lr, **unrecorded):
    """The argument parser of an experiment's train.py, with the record's values as defaults.

    ``epoch``, ``batchsize`` and ``lr`` are the record's; the excerpts per epoch, validation
    excerpts and preview interval default to :data:`common.protocol.UNRECORDED` unless given.
    """
    defaults = dict(protocol.UNRECORDED, **unrecorded)
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--gpu', '-g', type=int, default=-1,
                        help='GPU id (negative value: CPU)')
    parser.add_argument('--epoch', '-e', type=int, default=epoch,
                        help='number of epochs (record: %(default)s)')
    parser.add_argument('--batchsize', '-b', type=int, default=batchsize,
                        help='minibatch size (record: %(default)s)')
    parser.add_argument('--lr', type=float, default=lr,
                        help='learning rate (record: %(default)s)')
    parser.add_argument('--lr-decay-epochs', type=_epoch_list, default=[], metavar='E1,E2,...',
                        help='multiply the learning rate by --lr-decay-factor at the end of '
                             'these epochs (record: none, a constant rate)')
    parser.add_argument('--lr-decay-factor', type=float, default=0.1,
                        help='factor of each --lr-decay-epochs step (default: %(default)s)')
    parser.add_argument('--dataset', '-d', default=dataset.DEMO_CORPUS,
                        help='folder of recordings, searched recursively (default: demo corpus)')
    parser.add_argument('--out', '-o', default=default_out(experiment_id),
                        help='results folder (default: results/{} of this repository, '
                             'wherever you run it from: %(default)s)'.format(experiment_id))
    parser.add_argument('--resume', '-r', nargs='?', const='latest', default=None,
                        help='continue a run: a snapshot file, or no value for the newest '
                             'snapshot in --out')
    parser.add_argument('--force', action='store_true',
                        help='start over in a results folder that already holds a run')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of initial weights, train/validation split and excerpts')
    parser.add_argument('--excerpts-per-epoch', type=int, default=defaults['excerpts_per_epoch'],
                        help='random training excerpts drawn per epoch (default: %(default)s)')
    parser.add_argument('--validation-excerpts', type=int,
                        default=defaults['validation_excerpts'],
                        help='fixed validation excerpts (default: %(default)s)')
    parser.add_argument('--preview-interval', type=int, default=defaults['preview_interval'],
                        help='write spectrogram images and audio every N epochs and at the end')
    parser.add_argument('--snapshot-interval', type=int, default=SNAPSHOT_INTERVAL,
                        help='write a trainer snapshot (for --resume) every N epochs and at the '
                             'end (default: %(default)s; Ctrl-C and SIGTERM always write one)')
    parser.add_argument('--communicator', nargs='?', const='auto', default=None,
                        help='train data-parallel under MPI (mpiexec -n N ...) with this '
                             'ChainerMN '
                             'communicator: naive on CPUs; pure_nccl (the default with --gpu), '
                             'flat or non_cuda_aware on GPUs')
    parser.add_argument('--snapshots-kept', type=int, default=SNAPSHOTS_KEPT,
                        help='newest snapshots kept in --out (default: %(default)s; 0: remove '
                             'them when the run has finished, so it cannot be continued)')
    add_gpu_flags(parser)
    # --tensorboard (common/tensorboard.py): refused while parsing, in one line saying what to
    # install, when tensorboardX is missing.
    from common.tensorboard import TensorBoardFlag
    parser.add_argument('--tensorboard', action=TensorBoardFlag,
                        help='also write TensorBoard event files (scalars, previews, latents) '
                             "into OUT/tensorboard/; needs pip install -e '.[tensorboard]'")
    return parser


def _epoch_list(text):
    """'10,15' -> [10, 15]: increasing positive epochs (argparse type of --lr-decay-epochs)."""
    try:
        epochs = [int(part) for part in text.split(',')] if text.strip() else []
    except ValueError:
        raise argparse.ArgumentTypeError('expected epochs such as 10,15, got %r' % text)
    if any(e < 1 for e in epochs) or epochs != sorted(set(epochs)):
        raise argparse.ArgumentTypeError('epochs must be positive and increasing, got %r' % text)
    return epochs


def lr_decay(trainer, args):
    """--lr-decay-epochs: the learning rate times --lr-decay-factor at the end of each given
    epoch (:class:`common.extensions.StepDecay`); nothing for the record's constant rate."""
    if args.lr_decay_epochs:
        from common.extensions import StepDecay
        trainer.extend(StepDecay(args.lr, args.lr_decay_epochs, args.lr_decay_factor),
                       name='lr_decay')


# The flags that define what a run trains: a run continued with --resume keeps them (any other,
# e.g. --epoch to train on longer, or --preview-interval, may change between its parts).
TRAINING_SETTINGS = ('batchsize', 'lr', 'lr_decay_epochs', 'lr_decay_factor',
                     'excerpts_per_epoch', 'validation_excerpts', 'seed')


def training_settings(args):
    """{flag: value} of :data:`TRAINING_SETTINGS` (JSON values), as RunIdentity keeps them."""
    return {name: (list(value) if isinstance(value, (list, tuple)) else value)
            for name, value in ((name, getattr(args, name)) for name in TRAINING_SETTINGS)}


def flag(name):
    """'lr_decay_epochs' -> '--lr-decay-epochs'."""
    return '--' + name.replace('_', '-')


def parse_training_args(parser, argv=None):
    """Parse and check the flags of :func:`training_parser`: argparse's own errors on misuse,
    and :class:`UsageError` (one line) for a value or combination of values that is out of range.
    """
    args = parser.parse_args(argv)
    for name in ('epoch', 'batchsize', 'excerpts_per_epoch', 'validation_excerpts',
                 'preview_interval', 'snapshot_interval'):
        if getattr(args, name) < 1:
            raise UsageError('{} must be at least 1'.format(flag(name)))
    if args.snapshots_kept < 0:
        raise UsageError('--snapshots-kept must be at least 0')
    if not (math.isfinite(args.lr) and args.lr > 0):
        raise UsageError('--lr must be a positive number, not {}'.format(args.lr))
    if args.seed not in protocol.SEEDS:
        raise UsageError('--seed {} is out of range: a seed is {} to {}'.format(
            args.seed, protocol.SEEDS.start, protocol.SEEDS.stop - 1))
    if args.batchsize > args.excerpts_per_epoch:
        # A minibatch larger than the epoch spans several epochs in one iteration: the log and
        # summary.json would count epochs that never ended with their own update.
        raise UsageError('--batchsize {} is more than the {} excerpts of an epoch '
                         '(--excerpts-per-epoch): one iteration would span several epochs; give '
                         'a minibatch of at most {}'.format(args.batchsize, args.excerpts_per_epoch,
                                                            args.excerpts_per_epoch))
    if not 0 < args.lr_decay_factor <= 1:
        raise UsageError('--lr-decay-factor must be in (0, 1], not {}'.format(args.lr_decay_factor))
    check_gpu_flags(parser, args)
    return args


# The GPU's memory cap and TF32 (issue 19) -----------------------------------------------------

def add_gpu_flags(parser):
    """--gpu-memory-limit and --tf32 (checked by :func:`check_gpu_flags`, applied by
    :func:`configure_gpu`)."""
    parser.add_argument('--gpu-memory-limit', type=float, default=None, metavar='MIB',
                        help="cap CuPy's memory pool at MIB MiB, so that the run proves it fits a "
                             "card (the record's had 3017 MiB, about 2600 of them free for the "
                             'run); past the cap the run stops with an error')
    parser.add_argument('--tf32', action='store_true',
                        help="let cuBLAS multiply float32 matrices in TF32 (CUPY_TF32=1): faster "
                             "on recent GPUs, but not the record's float32 arithmetic; off by "
                             'default (CUPY_TF32=0 for the run), recorded in summary.json')


def check_gpu_flags(parser, args):
    if args.gpu_memory_limit is not None:
        if not 0 < args.gpu_memory_limit < float('inf'):
            parser.error('--gpu-memory-limit must be a positive number of MiB')
        if args.gpu < 0:
            parser.error('--gpu-memory-limit caps the GPU memory pool: give --gpu N')
    if args.tf32 and args.gpu < 0:
        parser.error('--tf32 is a mode of the GPU\'s matrix products: give --gpu N')


def configure_gpu(args, device):
    """Apply --tf32 (CUPY_TF32, read by CuPy at its first float32 matrix product, so before
    anything is computed) and --gpu-memory-limit (on ``device``, once it is current)."""
    os.environ['CUPY_TF32'] = '1' if getattr(args, 'tf32', False) else '0'
    limit = getattr(args, 'gpu_memory_limit', None)
    if limit is not None and device.xp is not numpy:
        gpu_memory.limit_pool(limit)


def get_device(gpu):
    """The Chainer device of ``--gpu`` (negative or None: the CPU), made current.

    Every command that takes ``--gpu`` gets its device here, so a GPU that cannot be used stops
    each of them the same way, before any slow work: :class:`UsageError` with why (the
    environment report's ``cuda_problem``: CuPy missing, CUDA library missing, no driver, no
    such GPU) and what to do, instead of Chainer's RuntimeError and a traceback.
    """
    if gpu is None or gpu < 0:
        device = chainer.get_device('@numpy')
        device.use()
        return device
    report = env.cuda_report(gpu)
    if not report['cuda_usable']:
        raise UsageError('--gpu {}: {}; {}, or use --gpu -1 for the CPU'.format(
            gpu, report['cuda_problem'], report['cuda_fix']))
    try:
        device = chainer.get_device('@cupy:{}'.format(gpu))
        device.use()
    except Exception as error:  # noqa: BLE001  (a GPU that is listed but refuses a context)
        raise UsageError('--gpu {}: GPU {} cannot be used ({}); use --gpu -1 for the CPU'.format(
            gpu, gpu, env.one_line(error)))
    return device


def check_experiment_id(experiment_id, train_py):
    """UsageError unless ``experiment_id`` (a train.py's EXPERIMENT) is the name of the folder
    that holds ``train_py``: the id names the results folder, goes into every snapshot and
    summary.json, and is how the tools find the run's net.py (``<id>/net.py:Net``).  A folder
    copied to start the next experiment still says the old id until its EXPERIMENT is edited;
    it would train the new net.py into the old experiment's results, as the old one's."""
    folder = os.path.basename(os.path.dirname(os.path.abspath(train_py)))
    if not runs.EXPERIMENT_ID.fullmatch(folder):
        raise UsageError('{}: the folder name {!r} is not an experiment id (letters, digits, '
                         '_ . -): rename the folder'.format(train_py, folder))
    if experiment_id != folder:
        raise UsageError("{}: EXPERIMENT = {!r}, but the experiment's folder is {}: an "
                         "experiment's id is its folder's name (its results folder, snapshots "
                         "and the tools' way to its net.py); set EXPERIMENT = {!r}".format(
                             train_py, experiment_id, folder, folder))


def exit_status(main, argv=None):
    """Run ``main(argv)`` of an experiment's train.py (after :func:`check_experiment_id` of its
    EXPERIMENT); a bad input becomes one line on stderr and exit status 2."""
    from common import distributed
    prog = os.path.basename(sys.argv[0])
    module = sys.modules.get(main.__module__)
    try:
        if getattr(module, '__file__', None) and hasattr(module, 'EXPERIMENT'):
            check_experiment_id(module.EXPERIMENT, os.path.relpath(module.__file__))
        with sigterm_as_interrupt():
            main(argv)
    except ONE_LINE_ERRORS as e:
        comm = distributed.active()
        everywhere = getattr(e, 'everywhere', False)
        rank = distributed.process_rank()
        if rank == 0 or not everywhere:
            worker = '' if comm is None or everywhere else ' (worker {})'.format(rank)
            print('{}: error{}: {}'.format(prog, worker, e), file=sys.stderr, flush=True)
        if not everywhere:
            distributed.abort(comm, 2)
        return 2
    except KeyboardInterrupt as e:  # a second Ctrl-C, or Ctrl-C or SIGTERM outside the loop
        terminated = isinstance(e, Terminated)
        print('{}: interrupted ({}){}'.format(prog, 'SIGTERM' if terminated else 'Ctrl-C',
                                              ' ' + str(e) if str(e) else ''),
              file=sys.stderr, flush=True)
        return 128 + int(signal.SIGTERM if terminated else signal.SIGINT)
    return 0
