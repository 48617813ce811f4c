"""Samples/s of data-parallel training (ChainerMN) against one process, side by side.

One training iteration of an experiment as ``train.py --communicator`` runs it (forward, MSE,
backward, gradients all-reduced, RMSprop; MultiNodeBatchNormalization under MPI) at a global
minibatch, for each configuration in turn, round after round:

* CPU (default): 1 process with ``--threads`` BLAS threads (all cores) against ``--workers``
  MPI processes (mpiexec, naive communicator) with ``threads / workers`` threads each;
* GPU (``--gpu 0``): 1 GPU against ``--workers`` GPUs of this node (pure_nccl).

    python bench/data_parallel.py [EXPERIMENT] [--batchsize 50] [--workers 2] [--iterations 3]
                                  [--rounds 2] [--threads N] [--gpu -1] [--json FILE]

The configurations alternate round by round, so load from other processes hits them alike;
the table gives medians of the seconds per iteration and the samples/s they mean.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
THREAD_VARIABLES = ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('experiment', nargs='?', default='bc7db4a2')
    parser.add_argument('--batchsize', '-b', type=int, default=50, help='global minibatch')
    parser.add_argument('--workers', type=int, default=2, help='MPI processes (default: 2)')
    parser.add_argument('--iterations', '-i', type=int, default=3,
                        help='timed iterations per configuration and round, after one warm-up')
    parser.add_argument('--rounds', type=int, default=2)
    parser.add_argument('--threads', type=int, default=os.cpu_count(),
                        help='CPU threads in all (default: all cores)')
    parser.add_argument('--gpu', '-g', type=int, default=-1)
    parser.add_argument('--json', help='also write the results to this JSON file')
    parser.add_argument('--worker', action='store_true', help=argparse.SUPPRESS)
    parser.add_argument('--communicator', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.batchsize % args.workers:
        parser.error('--batchsize must be divisible by --workers')
    return args


def worker(args):
    """One configuration, in this process (under mpiexec when data-parallel): JSON on rank 0."""
    sys.path.insert(0, os.path.join(REPOSITORY, args.experiment))
    import numpy
    import common  # noqa: F401
    import chainer
    from common import cli, dataset, distributed, objectives
    from net import Net

    args.validation_excerpts = args.workers
    comm = distributed.create_communicator(args)
    device = cli.get_device(distributed.device_of(args, comm))
    workers = distributed.size(comm)
    corpus = dataset.load_corpus(dataset.DEMO_CORPUS, log=lambda message: None)
    x = dataset.ValidationExcerpts(corpus.validation_waves, args.batchsize, seed=0).spectrograms
    share = args.batchsize // workers
    x = device.send(x[distributed.rank(comm) * share:(distributed.rank(comm) + 1) * share])

    numpy.random.seed(0)
    model = objectives.Reconstruction(distributed.multi_node_batch_normalization(Net(), comm))
    model.to_device(device)
    optimizer = chainer.optimizers.RMSprop(lr=1e-5)
    optimizer.setup(model)
    optimizer = distributed.multi_node_optimizer(optimizer, comm)

    def barrier():
        if device.xp is not numpy:
            device.xp.cuda.Device().synchronize()
        if comm is not None:
            comm.mpi_comm.Barrier()

    seconds = []
    for step in range(args.iterations + 1):
        barrier()
        started = time.perf_counter()
        optimizer.update(model, x)
        barrier()
        if step:  # the first is the warm-up
            seconds.append(time.perf_counter() - started)
    if distributed.is_writer(comm):
        print(json.dumps({'workers': workers, 'seconds': seconds}))


def configurations(args):
    """(label, workers, environment) of each configuration."""
    one = dict(os.environ)
    many = dict(os.environ)
    for name in THREAD_VARIABLES:
        one[name] = str(args.threads)
        many[name] = str(max(args.threads // args.workers, 1))
    if args.gpu >= 0:
        return [('1 GPU', 1, one), ('{} GPUs, pure_nccl'.format(args.workers), args.workers, many)]
    return [('1 process x {} threads'.format(args.threads), 1, one),
            ('{} processes x {} threads, naive'.format(
                args.workers, max(args.threads // args.workers, 1)), args.workers, many)]


def command(args, workers):
    own = [sys.executable, os.path.abspath(__file__), args.experiment, '--worker',
           '--batchsize', str(args.batchsize), '--workers', str(args.workers),
           '--iterations', str(args.iterations), '--gpu', str(args.gpu)]
    if workers == 1:
        return own
    own += ['--communicator', 'pure_nccl' if args.gpu >= 0 else 'naive']
    mpiexec = shutil.which('mpiexec', path=os.path.dirname(sys.executable)) \
        or shutil.which('mpiexec')
    if mpiexec is None:
        sys.exit("no mpiexec: pip install -e '.[mpi]'")
    return [mpiexec, '-n', str(workers)] + own


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        return worker(args)
    results = {label: [] for label, _, _ in configurations(args)}
    for round_ in range(args.rounds):
        for label, workers, environment in configurations(args):
            done = subprocess.run(command(args, workers), env=environment, cwd=REPOSITORY,
                                  capture_output=True, text=True)
            if done.returncode != 0:
                sys.exit('{} failed:\n{}'.format(label, done.stderr[-3000:]))
            line = [text for text in done.stdout.splitlines() if text.startswith('{')][-1]
            results[label] += json.loads(line)['seconds']
            print('round {}: {}: {}'.format(round_ + 1, label, ' '.join(
                '{:.2f}'.format(s) for s in json.loads(line)['seconds'])), flush=True)
    baseline = statistics.median(next(iter(results.values())))
    print('\n{} at global minibatch {}:'.format(args.experiment, args.batchsize))
    print('| configuration | s/iteration (median) | samples/s | vs 1 process |')
    print('|---|---|---|---|')
    table = []
    for label, seconds in results.items():
        median = statistics.median(seconds)
        row = {'configuration': label, 'seconds': seconds, 'median': median,
               'samples_per_second': args.batchsize / median, 'speedup': baseline / median}
        table.append(row)
        print('| {} | {:.2f} | {:.1f} | {:.2f}x |'.format(
            label, median, row['samples_per_second'], row['speedup']))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump({'experiment': args.experiment, 'batchsize': args.batchsize,
                       'rows': table}, f, indent=2)
    return 0


if __name__ == '__main__':
    sys.exit(main())
