"""Everything an experiment's train.py shares: flags, data, Trainer, extensions, summary.

An experiment folder holds its ``net.py`` (the Chain) and a thin ``train.py`` that calls
:func:`main` with its id, its net and the record's hyper-parameters.  This module builds the
iterator, the RMSprop optimizer, the updater, the Trainer and its extensions in the way of
Chainer's own examples, and writes the results folder.
"""
import argparse
import datetime
import functools
import glob
import json
import os
import re
import sys
import time

import numpy

import common  # noqa: F401
import chainer
import chainer.functions as F
from chainer import training
from chainer.training import extensions

from common import audio, dataset, env, files
from common import extensions as ext
from common import preview
from common import report
from common import spectrogram as sp

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO_CORPUS = os.path.join(REPOSITORY, 'data', 'demo')
SNAPSHOT = 'snapshot_iter_{.updater.iteration}'
save_npz = functools.partial(chainer.serializers.save_npz, compression=False)
RUN_FILES = ('log', 'summary.json', 'model.npz', 'index.html')  # a folder holding any of these holds a run


class Reconstruction(chainer.Chain):
    """The training objective: mean squared error between input and output spectrogram."""

    def __init__(self, predictor):
        super().__init__()
        with self.init_scope():
            self.predictor = predictor

    def forward(self, x):
        loss = F.mean_squared_error(self.predictor(x), x)
        chainer.report({'loss': loss}, self)
        return loss


class UsageError(Exception):
    """Bad flags or results folder: reported as one line, exit status 2."""


def parse_args(experiment_id, description, argv, **defaults):
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--gpu', '-g', type=int, default=-1,
                        help='GPU id (negative value: CPU)')
    parser.add_argument('--epoch', '-e', type=int, default=defaults['epoch'],
                        help='number of epochs (record: %(default)s)')
    parser.add_argument('--batchsize', '-b', type=int, default=defaults['batchsize'],
                        help='minibatch size (record: %(default)s)')
    parser.add_argument('--lr', type=float, default=defaults['lr'],
                        help='RMSprop learning rate (record: %(default)s)')
    parser.add_argument('--dataset', '-d', default=DEMO_CORPUS,
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
    args = parser.parse_args(argv)
    for name in ('epoch', 'batchsize', 'excerpts_per_epoch', 'validation_excerpts',
                 'preview_interval'):
        if getattr(args, name) < 1:
            parser.error('--{} must be at least 1'.format(name.replace('_', '-')))
    if args.lr <= 0:
        parser.error('--lr must be positive')
    return args


def snapshots(out):
    """Snapshot files in ``out``, oldest first (by iteration)."""
    found = glob.glob(os.path.join(out, 'snapshot_iter_*'))
    found = [path for path in found if re.fullmatch(r'snapshot_iter_\d+', os.path.basename(path))]
    return sorted(found, key=lambda path: int(path.rsplit('_', 1)[1]))


def prepare_out(args):
    """Refuse to overwrite a run unless --resume or --force; return the snapshot to resume."""
    previous = [name for name in RUN_FILES if os.path.exists(os.path.join(args.out, name))]
    previous += [os.path.basename(path) for path in snapshots(args.out)]
    if args.resume:
        if args.force:
            raise UsageError('--resume and --force contradict each other: give one')
        path = args.resume
        if path == 'latest':
            found = snapshots(args.out)
            if not found:
                raise UsageError('{}: no snapshot to resume from'.format(args.out))
            path = found[-1]
        if not os.path.isfile(path):
            raise UsageError('{}: no such snapshot'.format(path))
        return path
    if previous and not args.force:
        raise UsageError(
            '{} already holds a run ({}): pass --resume to continue it or --force to start over'
            .format(args.out, ', '.join(previous[:4])))
    if previous:
        for name in previous:
            os.remove(os.path.join(args.out, name))
    os.makedirs(args.out, exist_ok=True)
    return None


def build_trainer(args, net, corpus, device):
    """Iterators, RMSprop, StandardUpdater, Trainer and the extensions of the record's run."""
    train = dataset.TrainingExcerpts(corpus.train_waves, args.excerpts_per_epoch, seed=args.seed)
    validation = dataset.ValidationExcerpts(corpus.validation_waves, args.validation_excerpts,
                                            seed=args.seed)
    train_iter = chainer.iterators.SerialIterator(train, args.batchsize, shuffle=False)
    validation_iter = chainer.iterators.SerialIterator(validation, args.batchsize,
                                                       repeat=False, shuffle=False)
    model = Reconstruction(net)
    model.to_device(device)
    optimizer = chainer.optimizers.RMSprop(lr=args.lr)  # alpha 0.99, eps 1e-8: Chainer's defaults
    optimizer.setup(model)

    updater = training.updaters.StandardUpdater(train_iter, optimizer, device=device)
    trainer = training.Trainer(updater, (args.epoch, 'epoch'), out=args.out)
    # Uncompressed: 400 MB of float32 weights hardly compress, and zlib costs seconds per epoch.
    snapshot = extensions.snapshot(savefun=save_npz, filename=SNAPSHOT, n_retains=2)
    trainer.extend(ext.StopOnNonFinite())
    trainer.extend(ext.SnapshotOnInterrupt(snapshot), name='snapshot_on_interrupt')
    trainer.extend(extensions.Evaluator(validation_iter, model, device=device))
    trainer.extend(snapshot, trigger=(1, 'epoch'))
    trainer.extend(extensions.LogReport())
    trainer.extend(extensions.PlotReport(
        ['main/loss', 'validation/main/loss'], 'epoch', file_name='loss.png',
        postprocess=_label_loss_plot))
    trainer.extend(extensions.PrintReport(
        ['epoch', 'iteration', 'main/loss', 'validation/main/loss', 'elapsed_time']))
    trainer.extend(extensions.ProgressBar(update_interval=1))
    if device.xp is not numpy:
        trainer.extend(ext.PeakGPUMemory(), name='peak_gpu_memory')

    samples = [preview.PreviewSample('', 'validation excerpt 0', validation.excerpt(0),
                                     validation[0]),
               preview.pysptk_sample()]
    final_epoch = args.epoch
    trainer.extend(preview.Preview(net, samples, device), name='preview',
                   trigger=lambda t: t.updater.is_new_epoch and (
                       t.updater.epoch % args.preview_interval == 0
                       or t.updater.epoch >= final_epoch))
    return trainer, validation


def _label_loss_plot(figure, axes, summary):
    axes.set_xlabel('epoch')
    axes.set_ylabel('mean squared error')
    axes.set_title('learning curve')


def write_summary(path, experiment_id, args, net, corpus, trainer, device):
    log = trainer.get_extension('LogReport').log
    last = log[-1] if log else {}
    peak = None
    if device.xp is not numpy:
        peak = trainer.get_extension('peak_gpu_memory').peak_bytes / 2 ** 20
    environment = env.describe()
    summary = {
        'experiment': experiment_id,
        'net': '{}/net.py:{}'.format(experiment_id, type(net).__name__),
        'hyperparameters': {
            'epoch': args.epoch, 'batchsize': args.batchsize, 'lr': args.lr,
            'optimizer': 'RMSprop', 'alpha': 0.99, 'eps': 1e-8,
            'loss': 'mean_squared_error', 'seed': args.seed,
            'excerpts_per_epoch': args.excerpts_per_epoch,
            'validation_excerpts': args.validation_excerpts,
            'preview_interval': args.preview_interval,
        },
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
        'gpu': environment['gpu'] if device.xp is not numpy else None,
        'peak_gpu_memory_mib': None if peak is None else round(peak, 1),
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


def train(experiment_id, net_class, args):
    resume_from = prepare_out(args)
    device = chainer.get_device('@cupy:{}'.format(args.gpu) if args.gpu >= 0 else '@numpy')
    device.use()
    corpus = dataset.load_corpus(args.dataset, seed=args.seed)
    numpy.random.seed(args.seed)  # Chainer's initializers draw from numpy's global generator
    net = net_class()
    trainer, _ = build_trainer(args, net, corpus, device)
    if resume_from:
        chainer.serializers.load_npz(resume_from, trainer)
        print('resumed from {} (epoch {}, iteration {})'.format(
            resume_from, trainer.updater.epoch, trainer.updater.iteration))
    print('{}: {:,} parameters, {} on {}, {} files ({:.2f} h) from {}'.format(
        experiment_id, net.count_params(), 'training', device, corpus.n_files, corpus.hours,
        corpus.root))
    started = time.time()
    try:
        trainer.run(show_loop_exception_msg=False)
    except ext.NonFiniteLoss as e:
        kept = snapshots(args.out)
        raise UsageError('training stopped: {}; last good snapshot: {}'.format(
            e, kept[-1] if kept else 'none'))
    except ext.Interrupted as e:
        raise UsageError('{}; snapshot written, continue with --resume'.format(e))
    save_npz(os.path.join(args.out, 'model.npz'), net)
    summary = write_summary(os.path.join(args.out, 'summary.json'), experiment_id, args, net,
                            corpus, trainer, device)
    report.write_report(args.out)  # index.html: the run's page (python -m common.report)
    print('finished in {:.1f} min: training MSE {}, validation MSE {}; results in {}'.format(
        (time.time() - started) / 60, summary['final_training_mse'],
        summary['final_validation_mse'], args.out))
    return summary


def main(experiment_id, net_class, description, argv=None, **defaults):
    """Command-line entry of an experiment's train.py; returns the exit status."""
    args = parse_args(experiment_id, description, argv, **defaults)
    try:
        train(experiment_id, net_class, args)
    except (UsageError, dataset.CorpusError, audio.AudioError) as e:
        print('{}: error: {}'.format(os.path.basename(sys.argv[0]), e), file=sys.stderr)
        return 2
    return 0
