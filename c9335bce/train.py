#!/usr/bin/env python
"""Experiment c9335bce: the first AutoEncoder, before bc7db4a2 fixed its frequency direction.

Trains as recorded.  学習 (training): the loss is the mean squared error between the input
and the output spectrogram.  学習パラメータ (training parameters): RMSprop, learning rate
1e-5 (alpha 0.99 and eps 1e-8, Chainer's defaults), minibatch 100, 200 epochs.  On a GPU:

    python c9335bce/train.py --gpu 0

The results folder (--out, default results/c9335bce) gets the learning curve (loss.png),
spectrogram images and audio, the log, snapshots, model.npz, summary.json and index.html.
"""
import math
import os
import sys

# This repository's common/ (beside this folder), first: it checks this Python has the
# dependencies (one line if not) and makes Chainer importable (common.compat).
sys.path.insert(1, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import common  # noqa: F401
import numpy
import chainer
from chainer import training
from chainer.training import extensions

from common import cli, dataset, distributed, objectives, preview, results, tensorboard
from common import extensions as ext
from net import Net

EXPERIMENT = 'c9335bce'


def make_trainer(args, corpus, device, run_id=None, comm=None):
    """The record's run: data, objective, optimizer, updater, Trainer and its extensions.

    ``comm``: a ChainerMN communicator when data-parallel under MPI (common/distributed.py).
    """
    workers, writer = distributed.size(comm), distributed.is_writer(comm)
    # Data: fresh random 1.06 s excerpts every epoch (each worker its own stream, and its share
    # of the minibatch); a fixed validation set, which the workers evaluate in parts.
    per_worker = math.ceil(args.excerpts_per_epoch / workers)
    train = dataset.TrainingExcerpts(corpus.train_waves, per_worker, seed=args.seed,
                                     stream=distributed.rank(comm))
    validation = dataset.ValidationExcerpts(corpus.validation_waves, args.validation_excerpts,
                                            seed=args.seed)
    train_iter = dataset.ResumableIterator(train, args.batchsize // workers, shuffle=False,
                                           workers=workers)
    validation_iter = chainer.iterators.SerialIterator(
        distributed.scatter(validation, comm), args.batchsize // workers,
        repeat=False, shuffle=False)

    # Model and objective: mean squared error between input and output.
    numpy.random.seed(args.seed)  # Chainer's initializers draw from NumPy's global generator
    net = distributed.multi_node_batch_normalization(Net(), comm)  # BN of the global minibatch
    model = objectives.Reconstruction(net)
    model.to_device(device)

    # Optimizer: RMSprop, lr 1e-5 (the record); alpha and eps are Chainer's defaults.
    optimizer = chainer.optimizers.RMSprop(lr=args.lr, alpha=0.99, eps=1e-8)
    optimizer.setup(model)
    optimizer = distributed.multi_node_optimizer(optimizer, comm)  # gradients all-reduced

    updater = training.updaters.StandardUpdater(train_iter, optimizer, device=device)
    trainer = training.Trainer(updater, (args.epoch, 'epoch'), out=args.out)

    cli.lr_decay(trainer, args)  # --lr-decay-epochs (not the record's: it kept lr constant)

    snapshot = ext.snapshot(n_retains=max(args.snapshots_kept, 1))
    # Experiment, run and --batchsize, --lr, ... in every snapshot: --resume keeps them.
    trainer.extend(ext.RunIdentity(EXPERIMENT, run_id, cli.training_settings(args)), name='run')
    if comm is not None:
        trainer.extend(distributed.aggregated_loss(comm))  # the global minibatch's loss
    trainer.extend(ext.StopOnNonFinite())
    trainer.extend(ext.SnapshotOnInterrupt(snapshot if writer else None, comm),
                   name='snapshot_on_interrupt')
    trainer.extend(distributed.multi_node_evaluator(
        extensions.Evaluator(validation_iter, model, device=device), comm), name='validation')
    if writer:  # under MPI, rank 0 alone writes the results folder
        trainer.extend(snapshot, trigger=ext.every_epochs(args.snapshot_interval, args.epoch))
        trainer.extend(extensions.observe_lr(), name='observe_lr')  # lr in the log: a schedule shows
        trainer.extend(extensions.LogReport())
        trainer.extend(ext.loss_plot())
        trainer.extend(extensions.PrintReport(
            ['epoch', 'iteration', 'main/loss', 'validation/main/loss', 'elapsed_time']))
        trainer.extend(extensions.ProgressBar(update_interval=1))
        if device.xp is not numpy:
            trainer.extend(ext.PeakGPUMemory(), name='peak_gpu_memory')
        trainer.extend(preview.Preview(net, preview.samples(validation), device,
                                       args.preview_interval),
                       name='preview', trigger=ext.every_epochs(args.preview_interval, args.epoch))
        if args.tensorboard:  # <out>/tensorboard/: scalars, previews, latents (rank 0 only)
            trainer.extend(tensorboard.TensorBoardReport(
                validation, tensorboard.voices(corpus, validation)), name='tensorboard')
    return trainer


def parse_args(argv=None):
    """The flags every experiment takes; the defaults are this record's (学習パラメータ)."""
    parser = cli.training_parser(EXPERIMENT, __doc__, epoch=200, batchsize=100, lr=1e-5)
    return cli.parse_training_args(parser, argv)


def main(argv=None):
    args = parse_args(argv)
    comm = distributed.create_communicator(args)  # None: one process, without MPI
    with results.ResultsFolder(args, EXPERIMENT, comm) as out:  # locked; never overwrites a run
        device = cli.get_device(distributed.device_of(args, comm))
        cli.configure_gpu(args, device)  # --tf32, --gpu-memory-limit
        corpus = dataset.load_corpus(args.dataset, seed=args.seed, log=out.say)
        trainer = make_trainer(args, corpus, device, out.run_id, comm)
        out.resume(trainer)  # with --resume: model, optimizer, iterators, log from the snapshot
        out.run(trainer, corpus)
        out.finish(trainer, corpus)  # log, model.npz, summary.json, index.html


if __name__ == '__main__':
    sys.exit(cli.exit_status(main))
