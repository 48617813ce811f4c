"""Time one training iteration of an experiment's model: stock vs fast CPU paths, and PyTorch.

An iteration is what the Trainer does per minibatch: forward, mean squared error (the
``Reconstruction`` loss of common/objectives.py), backward and an RMSprop update (lr 1e-5,
Chainer's defaults otherwise).  Paths:

* ``stock``: Chainer 7.8.1's own kernels (``use_fast_convolution`` and
  ``use_fast_normalization`` off);
* ``conv``: common/fast_convolution.py with Chainer's own activations and BatchNormalization
  (``use_fast_normalization`` off), to show what each module contributes;
* ``fast``: common/fast_convolution.py and common/fast_normalization.py (the default of
  common/autoencoder.py);
* ``torch`` (with ``--torch``): the PyTorch reference ../shared/bench/torch_reference.py,
  imported by path and run in this process with the same thread count.  torch is a
  benchmark-only install, never a dependency of the project.

On CPU the paths alternate iteration by iteration (so load from other processes hits them
alike) after one warm-up iteration each, and the medians are compared.  On GPU the fast links
compute with common/bounded_convolution.py's kernels (``conv`` and ``fast`` are the same code
there: fast_normalization is CPU-only) and ``stock`` with Chainer's own im2col; each path runs on
its own after an emptied CuPy memory pool, and reports its peak memory in use (a CuPy memory
hook, common/gpu_memory.py) and the size its pool reached, separately (torch: its peak allocated
and reserved memory).

    python bench/train_step.py [EXPERIMENT] [--batchsize 50] [--gpu -1] [--iterations 5]
                               [--threads N] [--paths stock,conv,fast] [--torch] [--timer]

EXPERIMENT is an experiment folder holding net.py (default: bc7db4a2).
"""
import argparse
import contextlib
import importlib.util
import json
import os
import statistics
import sys
import time

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TORCH_REFERENCE = os.path.join(os.path.dirname(REPOSITORY), 'shared', 'bench',
                               'torch_reference.py')
THREAD_VARIABLES = ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('experiment', nargs='?', default='bc7db4a2',
                        help='experiment folder holding net.py (default: %(default)s)')
    parser.add_argument('--batchsize', '-b', type=int, default=50)
    parser.add_argument('--gpu', '-g', type=int, default=-1, help='GPU id (negative: CPU)')
    parser.add_argument('--iterations', '-i', type=int, default=5,
                        help='timed iterations per path, after one warm-up (default: 5)')
    parser.add_argument('--threads', type=int, default=0,
                        help='CPU threads of BLAS and torch (default: all cores)')
    parser.add_argument('--paths', default=None,
                        help='comma-separated Chainer paths among {} (default: stock,fast)'.format(
                                 ', '.join(PATH_CONFIGS)))
    parser.add_argument('--torch', action='store_true',
                        help='also time the PyTorch reference in this process')
    parser.add_argument('--torch-reference', default=TORCH_REFERENCE,
                        help='path of torch_reference.py (default: %(default)s)')
    parser.add_argument('--timer', action='store_true',
                        help='after timing, print where a fast-path iteration spends its time')
    parser.add_argument('--json', help='also write the results to this JSON file')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    if args.batchsize < 1 or args.iterations < 1 or args.threads < 0:
        parser.error('--batchsize and --iterations must be positive, --threads >= 0')
    return args


def load_by_path(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_net_class(experiment):
    folder = experiment if os.path.isdir(experiment) else os.path.join(REPOSITORY, experiment)
    path = os.path.join(folder, 'net.py')
    if not os.path.isfile(path):
        sys.exit('{}: no net.py in that experiment folder'.format(path))
    return load_by_path('{}_net'.format(os.path.basename(os.path.normpath(folder))), path).Net


class ChainerPath:
    """One Chainer model + RMSprop, run with the configuration of its path (PATH_CONFIGS)."""

    def __init__(self, name, net_class, x, device):
        import chainer
        from common.objectives import Reconstruction
        self.name, self.x, self.device = name, x, device
        self.fast = name == 'fast'
        self.config = PATH_CONFIGS[name]
        self.model = Reconstruction(net_class())
        self.model.to_device(device)
        self.optimizer = chainer.optimizers.RMSprop(lr=1e-5)  # alpha 0.99, eps 1e-8
        self.optimizer.setup(self.model)

    def step(self):
        import chainer
        with using_configs(self.config):
            self.optimizer.update(self.model, self.x)  # cleargrads, forward, backward, update
        if self.device.xp is not numpy_module():
            self.device.device.synchronize()


class TorchPath:
    """The PyTorch reference AutoEncoder, as its own main() runs it."""

    name = 'torch'

    def __init__(self, module_path, x_numpy, gpu):
        import torch
        self.torch = torch
        reference = load_by_path('torch_reference', module_path)
        self.device = torch.device('cuda:{}'.format(gpu) if gpu >= 0 else 'cpu')
        self.model = reference.AutoEncoder().to(self.device)
        self.optimizer = torch.optim.RMSprop(self.model.parameters(), lr=1e-5, alpha=0.99,
                                             eps=1e-8)
        self.x = torch.from_numpy(x_numpy).to(self.device)

    def step(self):
        torch = self.torch
        loss = torch.nn.functional.mse_loss(self.model(self.x), self.x)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        if self.device.type == 'cuda':
            torch.cuda.synchronize()


#: Chainer configuration of each path: which of the fast CPU modules it uses.
PATH_CONFIGS = {
    'stock': {'use_fast_convolution': False, 'use_fast_normalization': False},
    'conv': {'use_fast_convolution': True, 'use_fast_normalization': False},
    'fast': {'use_fast_convolution': True, 'use_fast_normalization': True},
}


def using_configs(config):
    """chainer.using_config for several keys at once."""
    import chainer
    stack = contextlib.ExitStack()
    for key, value in config.items():
        stack.enter_context(chainer.using_config(key, value))
    return stack


def numpy_module():
    import numpy
    return numpy


def blas_name():
    import numpy
    try:
        blas = numpy.show_config(mode='dicts')['Build Dependencies']['blas']
        return '{} {}'.format(blas['name'], blas['version'])
    except Exception:  # older NumPy: no dictionary form
        return 'unknown'


def timed(path):
    start = time.perf_counter()
    path.step()
    return time.perf_counter() - start


def report_line(name, times, batchsize, extra=''):
    median = statistics.median(times)
    return '{:6s} median {:7.3f} s/iteration {:8.1f} samples/s  (min {:.3f}, max {:.3f}){}'.format(
        name, median, batchsize / median, min(times), max(times), extra)


def main(argv=None):
    args = parse_args(argv)
    threads = args.threads or os.cpu_count()
    if args.threads:  # must precede the first import of numpy (BLAS reads it when it loads)
        for variable in THREAD_VARIABLES:
            os.environ[variable] = str(args.threads)
    sys.path.insert(0, REPOSITORY)

    import numpy
    import common  # noqa: F401  (Chainer compatibility)
    import chainer
    from common import cli, env

    try:
        device = cli.get_device(args.gpu)
    except cli.UsageError as error:  # an unusable --gpu: one line, as every command says it
        print('train_step.py: error: {}'.format(error), file=sys.stderr)
        sys.exit(2)
    gpu = device.xp is not numpy
    names = (args.paths or 'stock,fast').split(',')
    if not names or any(name not in PATH_CONFIGS for name in names):
        sys.exit('--paths: some of {}'.format(', '.join(PATH_CONFIGS)))
    net_class = load_net_class(args.experiment)
    shape = (args.batchsize, net_class.IN_CHANNELS, 32, 256)  # channel x time x frequency
    x_numpy = (numpy.random.RandomState(args.seed).rand(*shape) * 6.9).astype(numpy.float32)
    x = device.send(x_numpy)

    print('experiment {}, batch {}, device {}, threads {}, iterations {} (+1 warm-up)'.format(
        args.experiment, args.batchsize, device, threads, args.iterations))
    print('numpy {}, chainer {}, BLAS {}{}'.format(
        numpy.__version__, chainer.__version__, blas_name(),
        ', GPU {}'.format(env.describe()['gpu']) if gpu else ''))
    def chainer_path(name):
        numpy.random.seed(args.seed)  # same initial weights for each path
        return ChainerPath(name, net_class, x, device)

    makers = [(name, lambda name=name: chainer_path(name)) for name in names]
    if args.torch:
        import torch
        torch.set_num_threads(threads)
        print('torch {}, torch threads {}'.format(torch.__version__, torch.get_num_threads()))

        def torch_path():
            torch.manual_seed(args.seed)
            return TorchPath(args.torch_reference, x_numpy, args.gpu)
        makers.append(('torch', torch_path))

    times = {name: [] for name, _ in makers}
    peak = {}  # the peak in use
    pool_bytes = {}  # the size the memory pool reached: in use at the peak, and freed blocks
    paths = []
    if gpu:
        import cupy
        from common import gpu_memory
        pool = cupy.get_default_memory_pool()
        for name, make in makers:  # one after the other, each with the memory to itself
            pool.free_all_blocks()
            meter = gpu_memory.Meter(device.xp)
            with meter:
                path = make()
                for i in range(args.iterations + 1):
                    elapsed = timed(path)
                    if i:
                        times[name].append(elapsed)
                        print('{} iteration {}: {:.3f} s'.format(name, i, elapsed), flush=True)
            if isinstance(path, ChainerPath):
                peak[name], pool_bytes[name] = meter.peak_bytes, meter.pool_bytes
            else:
                peak[name] = path.torch.cuda.max_memory_allocated(path.device)
                pool_bytes[name] = path.torch.cuda.max_memory_reserved(path.device)
            del path
    else:
        paths = [make() for _, make in makers]
        for path in paths:
            print('{} warm-up: {:.3f} s'.format(path.name, timed(path)), flush=True)
        for i in range(args.iterations):
            order = paths[i % len(paths):] + paths[:i % len(paths)]  # rotate who goes first
            for path in order:
                elapsed = timed(path)
                times[path.name].append(elapsed)
                print('iteration {} {}: {:.3f} s'.format(i + 1, path.name, elapsed), flush=True)

    print()
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, values in times.items():
        extra = ''
        if name in peak:
            extra = ', peak in use {:.0f} MiB, {} {:.0f} MiB'.format(
                peak[name] / 2 ** 20, 'CuPy pool' if name != 'torch' else 'torch reserved',
                pool_bytes[name] / 2 ** 20)
        print(report_line(name, values, args.batchsize, extra))
    ratios = {}
    for name in ('conv', 'fast'):
        if 'stock' in medians and name in medians:
            ratios[name + '_vs_stock'] = medians['stock'] / medians[name]
            print('{} / stock throughput: {:.2f}x'.format(name, ratios[name + '_vs_stock']))
    if 'conv' in medians and 'fast' in medians:
        ratios['fast_vs_conv'] = medians['conv'] / medians['fast']
        print('fast / conv throughput: {:.2f}x'.format(ratios['fast_vs_conv']))
    for name in PATH_CONFIGS:
        if name in medians and 'torch' in medians:
            ratios[name + '_vs_torch'] = medians['torch'] / medians[name]
            print('{} / torch throughput: {:.2f}x'.format(name, ratios[name + '_vs_torch']))

    if args.timer:
        if gpu:
            print('--timer profiles the CPU path only')
        else:
            profile(paths)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump({'experiment': args.experiment, 'batchsize': args.batchsize,
                       'device': str(device), 'threads': threads, 'times': times,
                       'median_s': medians, 'ratios': ratios,
                       'peak_memory_bytes': peak, 'pool_bytes': pool_bytes}, f, indent=1)


def profile(paths):
    """One more fast-path iteration, split into forward, backward and update, with the exclusive
    time of each Chainer function type (a backward that applies other functions, as the
    convolutions' do, is charged only its own time)."""
    import chainer
    fast = [path for path in paths if getattr(path, 'fast', False)]
    if not fast:
        return
    path = fast[0]
    hook = ExclusiveTimer()
    model, optimizer = path.model, path.optimizer
    with using_configs(PATH_CONFIGS['fast']):
        model.cleargrads()
        start = time.perf_counter()
        with hook:
            loss = model(path.x)
            forward = time.perf_counter()
            loss.backward()
        backward = time.perf_counter()
        optimizer.update()
        update = time.perf_counter()
    print('\nwhere a fast iteration goes: forward {:.3f} s, backward {:.3f} s, '
          'RMSprop update {:.3f} s'.format(forward - start, backward - forward, update - backward))
    total = 0.0
    for name, (elapsed, calls) in sorted(hook.times.items(), key=lambda item: -item[1][0]):
        total += elapsed
        if elapsed >= 0.001:
            print('  {:40s} {:7.3f} s  {:4d} calls'.format(name, elapsed, calls))
    print('  {:40s} {:7.3f} s'.format('(all functions)', total))


def ExclusiveTimer():
    """A Chainer FunctionHook that times forward and backward of each function type, exclusive
    of the functions applied inside them (``.times``: name -> (seconds, calls))."""
    from chainer import function_hook

    class Hook(function_hook.FunctionHook):
        name = 'ExclusiveTimer'

        def __init__(self):
            self.times = {}
            self.stack = []  # [start, time of nested functions]

        def _pre(self):
            self.stack.append([time.perf_counter(), 0.0])

        def _post(self, name):
            start, nested = self.stack.pop()
            elapsed = time.perf_counter() - start
            if self.stack:
                self.stack[-1][1] += elapsed
            spent, calls = self.times.get(name, (0.0, 0))
            self.times[name] = (spent + elapsed - nested, calls + 1)

        def forward_preprocess(self, function, in_data):
            self._pre()

        def forward_postprocess(self, function, in_data):
            self._post(function.label + ' forward')

        def backward_preprocess(self, function, in_data, out_grad):
            self._pre()

        def backward_postprocess(self, function, in_data, out_grad):
            self._post(function.label + ' backward')

    return Hook()


if __name__ == '__main__':
    main()
