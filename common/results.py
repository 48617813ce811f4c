"""The results folder of a training run: refuse, start over or resume; run; write the record.

An experiment's ``train.py`` calls, in order, :func:`prepare_out` (before anything slow),
:func:`resume` (with ``--resume``), :func:`run` and :func:`finish`.  The finished folder holds
``model.npz``, ``summary.json`` and ``index.html`` besides what the Trainer's extensions wrote
(log, loss.png, previews, snapshots); :mod:`common.runs` reads it back.
"""
import datetime
import json
import os
import sys

import numpy

import common  # noqa: F401
import chainer

from common import env, files, report
from common import extensions as ext
from common import spectrogram as sp
from common.cli import UsageError

#: A folder holding any of these (or a snapshot) holds a run.
RUN_FILES = ('log', 'summary.json', 'model.npz', 'index.html')


def prepare_out(args):
    """Refuse to overwrite a run unless --resume or --force; return the snapshot to resume."""
    previous = [name for name in RUN_FILES if os.path.exists(os.path.join(args.out, name))]
    previous += [os.path.basename(path) for path in ext.snapshots(args.out)]
    if args.resume:
        if args.force:
            raise UsageError('--resume and --force contradict each other: give one')
        path = args.resume
        if path == 'latest':
            found = ext.snapshots(args.out)
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


def resume(trainer, snapshot):
    """Load a trainer snapshot (model, optimizer, iterators, extensions) into ``trainer``."""
    chainer.serializers.load_npz(snapshot, trainer)
    print('resumed from {} (epoch {}, iteration {})'.format(
        snapshot, trainer.updater.epoch, trainer.updater.iteration))


def run(trainer, experiment_id, corpus):
    """Say what trains on what, then ``trainer.run()``; the NaN stop and Ctrl-C become
    one-line errors (the snapshots stay)."""
    net = trainer.updater.get_optimizer('main').target.predictor
    print('{}: {:,} parameters, training on {}, {} files ({:.2f} h) from {}'.format(
        experiment_id, net.count_params(), net.device, corpus.n_files, corpus.hours,
        corpus.root))
    try:
        trainer.run(show_loop_exception_msg=False)
    except ext.NonFiniteLoss as e:
        kept = ext.snapshots(trainer.out)
        raise UsageError('training stopped: {}; last good snapshot: {}'.format(
            e, kept[-1] if kept else 'none'))
    except ext.Interrupted as e:
        raise UsageError('{}; snapshot written, continue with --resume'.format(e))


def finish(trainer, experiment_id, args, corpus):
    """Write model.npz, summary.json and index.html of a run that ended; return the summary."""
    net = trainer.updater.get_optimizer('main').target.predictor
    ext.save_npz(os.path.join(args.out, 'model.npz'), net)
    summary = write_summary(os.path.join(args.out, 'summary.json'), experiment_id, args,
                            corpus, trainer)
    report.write_report(args.out)  # index.html: the run's page (python -m common.report)
    print('finished in {:.1f} min: training MSE {}, validation MSE {}; results in {}'.format(
        trainer.elapsed_time / 60,
        summary['final_training_mse'], summary['final_validation_mse'], args.out))
    return summary


def hyperparameters(args, optimizer, model):
    """What summary.json records of the training: flags, the optimizer's settings, the loss."""
    optimizer = getattr(optimizer, 'actual_optimizer', optimizer)  # under ChainerMN's wrapper
    settings = optimizer.hyperparam.get_dict()
    return {
        'epoch': args.epoch, 'batchsize': args.batchsize, 'lr': settings.pop('lr', args.lr),
        'optimizer': type(optimizer).__name__, **settings,
        'loss': getattr(model, 'LOSS', type(model).__name__), 'seed': args.seed,
        'excerpts_per_epoch': args.excerpts_per_epoch,
        'validation_excerpts': args.validation_excerpts,
        'preview_interval': args.preview_interval,
    }


def write_summary(path, experiment_id, args, corpus, trainer):
    optimizer = trainer.updater.get_optimizer('main')
    model = optimizer.target
    net = model.predictor
    device = net.device
    on_gpu = device.xp is not numpy
    log = trainer.get_extension('LogReport').log
    last = log[-1] if log else {}
    peak = None
    if on_gpu:
        peak = trainer.get_extension('peak_gpu_memory').peak_bytes / 2 ** 20
    environment = env.describe()
    summary = {
        'experiment': experiment_id,
        'net': '{}/net.py:{}'.format(experiment_id, type(net).__name__),
        'hyperparameters': hyperparameters(args, optimizer, model),
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
