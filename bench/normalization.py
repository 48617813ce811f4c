"""Time each box's activation and BatchNormalization of an experiment: stock vs fast_normalization.

Forward and backward of every BatchNormalization of the net at its real size (the box's
output shape at the given minibatch), with the box's activation before it: Chainer's own
F.leaky_relu / F.tanh and L.BatchNormalization (``use_fast_normalization`` off) against the
fused node of common/fast_normalization.py.  The paths take turns box by box, so load from
other processes hits them alike; the totals per repeat and their medians are printed.

    python bench/normalization.py [EXPERIMENT] [--batchsize 50] [--repeats 5] [--threads N]
"""
import argparse
import os
import statistics
import sys
import time

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def box_shapes(net, batchsize):
    """[(box, activation name, output shape)] of every box with a BatchNormalization, in the
    order the net runs them (the latent box's normalization, without activation, in decode)."""
    import numpy
    import chainer
    x = numpy.zeros((batchsize, net.IN_CHANNELS, 32, 256), dtype=numpy.float32)
    shapes = []
    with chainer.no_backprop_mode(), chainer.using_config('train', False):
        for box, (name, h) in zip(net.ENCODER + net.DECODER, net.trace(x[:1])):
            if box.batch_norm:
                activation = 'identity' if box is net.ENCODER[-1] else box.activation
                shapes.append((box.name, activation, (batchsize,) + h.shape[1:]))
    return shapes


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('experiment', nargs='?', default='bc7db4a2')
    parser.add_argument('--batchsize', '-b', type=int, default=50)
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--threads', type=int, default=0,
                        help='threads of the fast node (OMP_NUM_THREADS; default: all cores)')
    args = parser.parse_args(argv)
    if args.threads:
        os.environ['OMP_NUM_THREADS'] = str(args.threads)
    sys.path.insert(0, REPOSITORY)
    sys.path.insert(0, os.path.join(REPOSITORY, 'bench'))
    import numpy
    import common  # noqa: F401  (Chainer compatibility)
    import chainer
    from common import fast_normalization
    from train_step import load_net_class

    numpy.random.seed(0)
    shapes = box_shapes(load_net_class(args.experiment)(), args.batchsize)
    rng = numpy.random.RandomState(0)
    print('{} boxes, minibatch {}, {} threads'.format(len(shapes), args.batchsize,
                                                     fast_normalization.thread_count()))

    def step(fast, z, gy, activation, link):
        link.cleargrads()
        zv = chainer.Variable(z.copy())
        start = time.perf_counter()
        with chainer.using_config('use_fast_normalization', fast):
            y = link.activate_and_normalize(zv, activation, overwrite=True)
        y.grad = gy
        y.backward()
        return time.perf_counter() - start

    totals = {'stock': [], 'fast': []}
    for repeat in range(args.repeats):
        spent = {'stock': 0.0, 'fast': 0.0}
        for _, activation, shape in shapes:
            z = rng.normal(0, 1, shape).astype(numpy.float32)
            gy = rng.normal(0, 1, shape).astype(numpy.float32)
            link = fast_normalization.BatchNormalization(shape[1])
            order = ('stock', 'fast') if repeat % 2 else ('fast', 'stock')
            for name in order:
                spent[name] += step(name == 'fast', z, gy, activation, link)
        for name in spent:
            totals[name].append(spent[name])
        print('repeat {}: stock {:.3f} s, fast {:.3f} s'.format(
            repeat + 1, spent['stock'], spent['fast']), flush=True)
    medians = {name: statistics.median(values) for name, values in totals.items()}
    for name, values in totals.items():
        print('{:5s} median {:.3f} s (min {:.3f}, max {:.3f})'.format(
            name, medians[name], min(values), max(values)))
    print('fast / stock: {:.1f}x'.format(medians['stock'] / medians['fast']))


if __name__ == '__main__':
    main()
