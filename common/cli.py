"""The command line of an experiment's ``train.py``: the flags every experiment takes, its device,
and bad input reported as one line.

An experiment's ``train.py`` builds its parser with :func:`training_parser`, giving the record's
own hyper-parameters (epochs, minibatch, learning rate) as the flags' defaults, and runs its
``main`` through :func:`exit_status`.
"""
import argparse
import os
import sys

import common  # noqa: F401
import chainer

from common import audio, dataset, env, protocol


class UsageError(Exception):
    """Bad flags, results folder or snapshot: reported as one line, exit status 2."""


#: Errors a command reports as one line ("train.py: error: ..."), never as a traceback.
ONE_LINE_ERRORS = (UsageError, dataset.CorpusError, audio.AudioError)


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
    parser.add_argument('--dataset', '-d', default=dataset.DEMO_CORPUS,
                        help='folder of recordings, searched recursively (default: demo corpus)')
    parser.add_argument('--out', '-o', default=os.path.join('results', experiment_id),
                        help='results folder (default: %(default)s)')
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
    return parser


def parse_training_args(parser, argv=None):
    """Parse and check the flags of :func:`training_parser` (argparse's own errors on misuse)."""
    args = parser.parse_args(argv)
    for name in ('epoch', 'batchsize', 'excerpts_per_epoch', 'validation_excerpts',
                 'preview_interval'):
        if getattr(args, name) < 1:
            parser.error('--{} must be at least 1'.format(name.replace('_', '-')))
    if args.lr <= 0:
        parser.error('--lr must be positive')
    return args


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


def exit_status(main, argv=None):
    """Run ``main(argv)``; a bad input becomes one line on stderr and exit status 2."""
    try:
        main(argv)
    except ONE_LINE_ERRORS as e:
        print('{}: error: {}'.format(os.path.basename(sys.argv[0]), e), file=sys.stderr)
        return 2
    return 0
