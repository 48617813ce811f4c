"""Does data loading keep up with training?  Batches per second of the training iterator.

    python bench/data_loading.py [--dataset DIR] [--batchsize 50] [--batches 40] [--workers 4]

Times the pipeline that an experiment's train.py uses (random 16896-sample excerpts of the decoded
corpus -> SPEC steps 2-6 -> a minibatch, moved to the device by the updater's converter) with
chainer.iterators.SerialIterator, and with MultiprocessIterator for comparison.  Compare the
batches/s with bench/train_step.py's iterations/s of the same minibatch on the target device:
the loader keeps up when it delivers more batches per second than the model consumes.
"""
import argparse
import statistics
import time

import common  # noqa: F401
import chainer

from common import dataset


def batches_per_second(iterator, batches):
    iterator.next()  # warm-up (starts workers, fills prefetch buffers)
    start = time.perf_counter()
    for _ in range(batches):
        chainer.dataset.concat_examples(iterator.next())
    return batches / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--dataset', default=dataset.DEMO_CORPUS)
    parser.add_argument('--batchsize', type=int, default=50)
    parser.add_argument('--batches', type=int, default=40)
    parser.add_argument('--workers', type=int, default=4)
    parser.add_argument('--repeats', type=int, default=3)
    args = parser.parse_args()
    corpus = dataset.load_corpus(args.dataset, log=lambda message: None)
    train = dataset.TrainingExcerpts(corpus.train_waves, 10 ** 6)
    kinds = {
        'SerialIterator': lambda: chainer.iterators.SerialIterator(train, args.batchsize,
                                                                   shuffle=False),
        'MultiprocessIterator ({} workers)'.format(args.workers):
            lambda: chainer.iterators.MultiprocessIterator(train, args.batchsize, shuffle=False,
                                                           n_processes=args.workers),
    }
    for name, make in kinds.items():
        rates = []
        for _ in range(args.repeats):
            iterator = make()
            rates.append(batches_per_second(iterator, args.batches))
            iterator.finalize()
        rate = statistics.median(rates)
        print('{:<32} {:7.1f} batches/s  {:8.0f} excerpts/s  (minibatch {}, median of {})'.format(
            name, rate, rate * args.batchsize, args.batchsize, args.repeats))


if __name__ == '__main__':
    main()
