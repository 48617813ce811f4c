"""Peak memory of a training iteration on the GPU path, against the record's 3017 MiB card.

    python bench/gpu_memory.py EXPERIMENT [--batchsize N] [--gpu 0] [--convolutions stock]
                               [--gpu-memory-limit MIB] [--json FILE]

One iteration as train.py runs it (the Reconstruction loss, RMSprop with lr 1e-5:
``optimizer.update(model, x)`` = forward, cleargrads, backward, update), run twice: the second
starts with the first's gradients alive until its forward pass is done, as in training.

* With ``--gpu N``: CuPy's peak bytes in use (a ``cupy.cuda.MemoryHook``, common/gpu_memory.py)
  and the size its pool reached (``total_bytes``).  ``--gpu-memory-limit MIB`` caps the pool, so
  the run proves that the iteration fits.
* On the CPU (the default): the GPU code path on NumPy arrays (common/gpu_path.py's switch: the
  bounded convolutions, Chainer's own BatchNormalization and activations) under ``tracemalloc``,
  which counts every NumPy array as CuPy's pool counts every CuPy array.  Chainer's CPU kernels of
  BatchNormalization, the activations and RMSprop make a few more temporaries than its GPU kernels
  (NumPy evaluates an expression one operation at a time, CuPy's elementwise kernels at once), so
  the CPU figure is an upper bound of the GPU's, up to CuPy rounding each block to 512 bytes.

``--convolutions stock`` runs Chainer's own convolutions instead (im2col of the whole minibatch,
then tensordot's copy of it), for comparison.  EXPERIMENT is an experiment folder; the minibatch
defaults to its train.py's (the record's).  The last line reads ``peak <N> MiB``: the larger peak
in use of the two iterations.
"""
import argparse
import json
import os
import sys
import time

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: The record's card (SPEC.md) less about 400 MiB of CUDA context: what an iteration may use.
TARGET_MIB = 2600


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('experiment', help='experiment folder holding net.py and train.py')
    parser.add_argument('--batchsize', '-b', type=int, default=None,
                        help="minibatch size (default: the experiment's train.py's)")
    parser.add_argument('--gpu', '-g', type=int, default=-1,
                        help='GPU id (negative: the GPU code path on NumPy, measured by '
                             'tracemalloc)')
    parser.add_argument('--convolutions', choices=('bounded', 'stock'), default='bounded',
                        help="bounded: the GPU path's (default); stock: Chainer's own")
    parser.add_argument('--gpu-memory-limit', type=float, default=None, metavar='MIB',
                        help="cap CuPy's memory pool at MIB MiB (with --gpu)")
    parser.add_argument('--json', help='also write the figures to this JSON file')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    if args.batchsize is not None and args.batchsize < 1:
        parser.error('--batchsize must be at least 1')
    if args.gpu_memory_limit is not None:
        if args.gpu < 0:
            parser.error('--gpu-memory-limit caps the GPU memory pool: give --gpu N')
        if not 0 < args.gpu_memory_limit < float('inf'):
            parser.error('--gpu-memory-limit must be positive (MiB)')
    return args


def experiment_modules(experiment):
    folder = experiment if os.path.isdir(experiment) else os.path.join(REPOSITORY, experiment)
    folder = os.path.abspath(folder)
    paths = {part: os.path.join(folder, part + '.py') for part in ('net', 'train')}
    for path in paths.values():
        if not os.path.isfile(path):
            sys.exit('gpu_memory.py: error: {}: no such file (EXPERIMENT is an experiment '
                     'folder)'.format(path))
    from common import runs
    return (runs.import_experiment_file(folder, 'net').Net,
            runs.import_experiment_file(folder, 'train'))


def mib(n):
    return n / 2 ** 20


def main(argv=None):
    args = parse_args(argv)
    sys.path.insert(0, REPOSITORY)
    import numpy
    import common  # noqa: F401  (Chainer compatibility)
    import chainer
    from common import cli, gpu_memory, gpu_path
    from common.objectives import Reconstruction

    try:
        device = cli.get_device(args.gpu)
    except cli.UsageError as error:
        print('gpu_memory.py: error: {}'.format(error), file=sys.stderr)
        return 2
    on_gpu = device.xp is not numpy
    net_class, train = experiment_modules(args.experiment)
    batchsize = args.batchsize or train.parse_args([]).batchsize
    limit = gpu_memory.limit_pool(args.gpu_memory_limit) if on_gpu else None
    x = (numpy.random.RandomState(args.seed).rand(batchsize, net_class.IN_CHANNELS, 32, 256)
         * 6.9).astype(numpy.float32)
    print('experiment {}, minibatch {}, {}, {} convolutions{}'.format(
        args.experiment, batchsize,
        device if on_gpu else 'the GPU code path on NumPy (tracemalloc)', args.convolutions,
        ', pool capped at {:.0f} MiB'.format(mib(limit)) if limit else ''), flush=True)

    figures = {'experiment': args.experiment, 'batchsize': batchsize, 'device': str(device),
               'convolutions': args.convolutions, 'pool_limit_bytes': limit, 'iterations': []}
    out_of_memory = ()
    if on_gpu:
        import cupy
        out_of_memory = (cupy.cuda.memory.OutOfMemoryError,)
        cupy.get_default_memory_pool().free_all_blocks()
    meter = gpu_memory.Meter(device.xp)
    try:
        with gpu_path.on_numpy(), \
                chainer.using_config('use_fast_convolution', args.convolutions == 'bounded'), \
                meter:
            numpy.random.seed(args.seed)
            model = Reconstruction(net_class())
            model.to_device(device)
            optimizer = chainer.optimizers.RMSprop(lr=1e-5)  # alpha 0.99, eps 1e-8 (the record)
            optimizer.setup(model)
            parameters = model.predictor.count_params()
            x = device.send(x)
            print('{:,} parameters: {:.1f} MiB each for the weights, their gradients and '
                  "RMSprop's mean squares".format(parameters, mib(4 * parameters)), flush=True)
            for iteration in (1, 2):
                meter.reset_peak()
                start = time.perf_counter()
                optimizer.update(model, x)
                if on_gpu:
                    device.device.synchronize()
                seconds = time.perf_counter() - start
                in_use, peak = meter.current()
                figures['iterations'].append({'peak_bytes': peak, 'in_use_after_bytes': in_use,
                                              'seconds': seconds})
                print('iteration {}: peak {:.0f} MiB in use, {:.0f} MiB in use after it, '
                      '{:.2f} s'.format(iteration, mib(peak), mib(in_use), seconds), flush=True)
    except out_of_memory as error:
        print('gpu_memory.py: error: out of GPU memory{} ({})'.format(
            ' within the cap of {:.0f} MiB'.format(mib(limit)) if limit else '',
            str(error).splitlines()[0]), file=sys.stderr)
        return 1
    peak = max(entry['peak_bytes'] for entry in figures['iterations'])
    figures.update(parameters=parameters, peak_bytes=peak, pool_bytes=meter.pool_bytes,
                   target_mib=TARGET_MIB)
    if on_gpu:
        print("CuPy's pool: {:.0f} MiB (total_bytes: in use at the peak, and freed blocks "
              'it keeps)'.format(mib(meter.pool_bytes)))
    print('target: at most {} MiB in use (the record\'s 3017 MiB card less the CUDA context): '
          '{}'.format(TARGET_MIB, 'met' if mib(peak) <= TARGET_MIB else 'NOT met'))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(figures, f, indent=1)
    print('peak {:.0f} MiB'.format(mib(peak)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
