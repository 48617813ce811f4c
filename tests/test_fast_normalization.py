"""common/fast_normalization.py computes what Chainer's activations and BatchNormalization compute.

* gradient_check of the node (float64) for each activation, with batch statistics (training)
  and with fixed statistics (test mode), first order on the fast kernels and second order
  through the stock-graph fallback;
* stock vs fast outputs, gradients and running statistics of the link, at shapes whose blocks
  split channels, hold many channels, or hold a single sample's row;
* every box of bc7db4a2 (convolution, activation, BatchNormalization) against the stock chain;
* the same results whatever the number of threads, statistics that stay exact for data far
  from zero, model files that load into stock links and back, and the stock functions wherever
  the fast path does not apply.
"""
import copy

import numpy
import pytest

import common  # noqa: F401  (Chainer compatibility)
import chainer
import chainer.functions as F
import chainer.links as L
from chainer import gradient_check

from conftest import forward_backward
from common import env
from common import fast_normalization as fn
# The bc7db4a2 net with non-trivial running statistics, a batch, and the comparison to stock.
from test_fast_convolution import TOLERANCE, batch, net, relative_error  # noqa: F401

ACTIVATION_NAMES = sorted(fn.ACTIVATIONS)


def _stock_activation(name):
    function = fn.ACTIVATIONS[name]
    return (lambda z: z) if function is None else function


@pytest.mark.parametrize('overwrite', [False, True], ids=['new-array', 'in-place'])
@pytest.mark.parametrize('fixed', [False, True], ids=['batch-statistics', 'fixed-statistics'])
@pytest.mark.parametrize('activation', ACTIVATION_NAMES)
def test_gradient_check_of_the_node(activation, fixed, overwrite):
    rng = numpy.random.RandomState(0)
    shape = (3, 4, 2, 5)
    z = rng.uniform(-1, 1, shape)
    gamma, beta = rng.uniform(0.5, 1.5, 4), rng.uniform(-1, 1, 4)
    statistics = dict(mean=rng.uniform(-0.2, 0.2, 4), var=rng.uniform(0.5, 1.5, 4)) \
        if fixed else {}

    def node(z, gamma, beta):
        # gradient_check evaluates the function repeatedly on the same input arrays, so the
        # in-place node gets a fresh copy (z + 0, whose gradient is the identity).
        return fn.ActivationBatchNormalization(activation, overwrite=overwrite, **statistics) \
            .apply((z + 0 if overwrite else z, gamma, beta))

    options = dict(dtype=numpy.float64, atol=1e-6, rtol=1e-5)
    gy = rng.uniform(-1, 1, shape)
    gradient_check.check_backward(node, (z, gamma, beta), gy, **options)
    gradient_check.check_double_backward(
        node, (z, gamma, beta), gy,
        (rng.uniform(-1, 1, shape), rng.uniform(-1, 1, 4), rng.uniform(-1, 1, 4)), **options)


def _link_pair(channels, rng):
    """A stock and a fast BatchNormalization link with the same non-trivial parameters."""
    stock, fast = L.BatchNormalization(channels), fn.BatchNormalization(channels)
    for name, low, high in (('gamma', 0.5, 1.5), ('beta', -1, 1)):
        value = rng.uniform(low, high, channels).astype(numpy.float32)
        getattr(stock, name).array[...] = value
        getattr(fast, name).array[...] = value
    for name, low, high in (('avg_mean', -0.2, 0.2), ('avg_var', 0.5, 1.5)):
        value = rng.uniform(low, high, channels).astype(numpy.float32)
        getattr(stock, name)[...] = value
        getattr(fast, name)[...] = value
    return stock, fast


def _stock_step(link, activation, z, gy):
    link.cleargrads()
    zv = chainer.Variable(z.copy())
    y = link(_stock_activation(activation)(zv))
    y.grad = gy
    y.backward()
    return y, zv.grad


def _fast_step(link, activation, z, gy):
    link.cleargrads()
    zv = chainer.Variable(z.copy())
    y = link.activate_and_normalize(zv, activation, overwrite=True)
    y.grad = gy
    y.backward()
    return y, zv.grad


# (N, C, H, W): blocks split a sample's channels (32 x 8192 values); many channels of 16 values
# (enc7's shape); channels of a single value.
SHAPES = [(3, 32, 32, 256), (4, 4096, 16, 1), (5, 6, 1, 1)]
SHAPE_IDS = ['split-channels', 'many-channels', 'one-value']


@pytest.mark.parametrize('train', [True, False], ids=['training', 'test-mode'])
@pytest.mark.parametrize('shape', SHAPES, ids=SHAPE_IDS)
@pytest.mark.parametrize('activation', ACTIVATION_NAMES)
def test_link_matches_stock(activation, shape, train):
    rng = numpy.random.RandomState(1)
    stock, fast = _link_pair(shape[1], rng)
    with chainer.using_config('train', train):
        for step in range(2):  # twice: the running statistics decay
            z = rng.normal(0.3, 2, shape).astype(numpy.float32)
            gy = rng.uniform(-1, 1, shape).astype(numpy.float32)
            y_stock, gz_stock = _stock_step(stock, activation, z, gy)
            y_fast, gz_fast = _fast_step(fast, activation, z, gy)
            assert isinstance(y_fast.creator, fn.ActivationBatchNormalization)
            assert not isinstance(y_stock.creator, fn.ActivationBatchNormalization)
            pairs = [('y', y_stock.array, y_fast.array), ('gz', gz_stock, gz_fast),
                     ('ggamma', stock.gamma.grad, fast.gamma.grad),
                     ('gbeta', stock.beta.grad, fast.beta.grad),
                     ('avg_mean', stock.avg_mean, fast.avg_mean),
                     ('avg_var', stock.avg_var, fast.avg_var)]
            for name, expected, actual in pairs:
                assert actual.dtype == numpy.float32
                error = relative_error(expected, actual)
                assert error <= TOLERANCE, '{} step {}: {:.2e}'.format(name, step, error)
    assert fast.N == stock.N == 0


def test_overwrite_puts_the_activation_into_the_input_and_only_for_leaky_relu():
    rng = numpy.random.RandomState(2)
    z = rng.normal(0, 1, (2, 3, 4, 5)).astype(numpy.float32)
    for activation in ACTIVATION_NAMES:
        link = fn.BatchNormalization(3)
        zv = chainer.Variable(z.copy())
        link.activate_and_normalize(zv, activation, overwrite=True)
        expected = _stock_activation(activation)(z).array if activation == 'leaky_relu' else z
        assert (zv.array == expected).all(), activation
        zv = chainer.Variable(z.copy())
        link.activate_and_normalize(zv, activation)  # overwrite=False: z untouched
        assert (zv.array == z).all(), activation


def test_the_results_do_not_depend_on_the_number_of_threads(monkeypatch):
    rng = numpy.random.RandomState(3)
    shape = (4, 32, 32, 64)  # 8 blocks per sample, 32 in all
    z = rng.normal(0, 1, shape).astype(numpy.float32)
    gy = rng.uniform(-1, 1, shape).astype(numpy.float32)
    results = []
    for threads in ('1', '2', '3'):
        monkeypatch.setenv('OMP_NUM_THREADS', threads)
        assert fn.thread_count() == int(threads)
        link = fn.BatchNormalization(shape[1])
        y, gz = _fast_step(link, 'leaky_relu', z, gy)
        results.append([y.array, gz, link.gamma.grad, link.beta.grad, link.avg_var])
    for other in results[1:]:
        for expected, actual in zip(results[0], other):
            assert (expected == actual).all()  # each block's sums are the same, bit for bit


def test_batch_statistics_stay_exact_far_from_zero():
    # Values 1000 +- 0.01: E[x^2] - E[x]^2 in float32 would lose every digit of the variance.
    rng = numpy.random.RandomState(4)
    h = (1000 + 0.01 * rng.normal(0, 1, (8, 3, 64, 64))).astype(numpy.float32)
    z3 = fn._as_3d(h.copy())
    mean, var = fn._batch_statistics(z3, z3, 'identity')
    exact = h.astype(numpy.float64)
    assert relative_error(exact.mean(axis=(0, 2, 3)), mean) <= 1e-7
    assert relative_error(exact.var(axis=(0, 2, 3)), var) <= 1e-3


def _box_step(block, x, gy, fast):
    """Output and every gradient of one Block (convolution, activation, BatchNormalization)."""
    y, gx, grads = forward_backward(block, x, gy, use_fast_normalization=fast)
    assert isinstance(y.creator, fn.ActivationBatchNormalization) == fast
    return y.array, gx, grads, block.bn.avg_mean.copy(), block.bn.avg_var.copy()


def test_every_box_of_bc7db4a2_matches_the_stock_chain(bc7db4a2_net):
    numpy.random.seed(0)
    net = bc7db4a2_net()
    rng = numpy.random.RandomState(5)
    h = rng.uniform(0, numpy.log(1000), (4, 1, 32, 256)).astype(numpy.float32)
    boxes = [box for box in net.ENCODER + net.DECODER if box.batch_norm]
    assert [box.activation for box in boxes].count('leaky_relu') == 14
    for box in boxes:
        block = net[box.name]
        x = h
        with chainer.no_backprop_mode():
            h = block(x).array
        gy = rng.uniform(-1, 1, h.shape).astype(numpy.float32)
        saved = block.bn.avg_mean.copy(), block.bn.avg_var.copy()
        stock = _box_step(block, x, gy, fast=False)
        block.bn.avg_mean[...], block.bn.avg_var[...] = saved
        fast = _box_step(block, x, gy, fast=True)
        names = ['y', 'gx'] + sorted(stock[2]) + ['avg_mean', 'avg_var']
        expected = [stock[0], stock[1]] + [stock[2][n] for n in sorted(stock[2])] + list(stock[3:])
        actual = [fast[0], fast[1]] + [fast[2][n] for n in sorted(stock[2])] + list(fast[3:])
        for name, e, a in zip(names, expected, actual):
            error = relative_error(e, a)
            # Batch statistics over 4 samples make the input gradient a difference of nearly
            # equal sums; 1e-4 is float32 rounding at that conditioning.
            assert error <= 1e-4, '{} {}: {:.2e}'.format(box.name, name, error)


def _running_statistics(net):
    """{path: avg_mean or avg_var array} of every BatchNormalization link of the net."""
    return {'{}/{}'.format(path, name): getattr(link, name)
            for path, link in net.namedlinks() if isinstance(link, L.BatchNormalization)
            for name in ('avg_mean', 'avg_var')}


def _whole_net(net, batch, fast):
    """Output, loss, parameter gradients and running statistics of the net: all stock, or
    the fast convolutions and the fast activation with BatchNormalization."""
    saved = {name: value.copy() for name, value in _running_statistics(net).items()}
    with chainer.using_config('use_fast_convolution', fast), \
            chainer.using_config('use_fast_normalization', fast):
        net.cleargrads()
        output = net(batch)
        loss = F.mean_squared_error(output, batch)
        loss.backward()
    grads = {name: param.grad.copy() for name, param in net.namedparams()}
    statistics = {name: value.copy() for name, value in _running_statistics(net).items()}
    for name, value in _running_statistics(net).items():
        value[...] = saved[name]
    net.cleargrads()
    return output.array, float(loss.array), grads, statistics


def test_whole_net_matches_stock(net, batch):
    # Test mode (running statistics): every gradient within float32 rounding of a float64
    # stock reference.
    # Training mode: outputs, loss and the running statistics every BatchNormalization
    # updates.  (Its gradients at small minibatches are differences of nearly equal sums whose
    # float32 rounding, stock or fast, reaches 1e-2 of their size; each box's gradients are
    # compared in the test above instead.)
    net64 = copy.deepcopy(net)
    for param in net64.params():
        param.array = param.array.astype(numpy.float64)
    for link in net64.links():
        if isinstance(link, L.BatchNormalization):
            link.avg_mean, link.avg_var = (a.astype(numpy.float64)
                                           for a in (link.avg_mean, link.avg_var))
    with chainer.using_config('train', False):
        stock = _whole_net(net, batch, fast=False)
        fast = _whole_net(net, batch, fast=True)
        exact = _whole_net(net64, batch.astype(numpy.float64), fast=False)
    assert relative_error(stock[0], fast[0]) <= TOLERANCE
    assert abs(stock[1] - fast[1]) <= TOLERANCE * abs(stock[1])
    assert exact[2].keys() == fast[2].keys() and len(fast[2]) == 16 * 2 + 15 * 2
    for name, expected in exact[2].items():
        assert relative_error(expected, fast[2][name]) <= TOLERANCE, name
    stock = _whole_net(net, batch, fast=False)
    fast = _whole_net(net, batch, fast=True)
    assert relative_error(stock[0], fast[0]) <= TOLERANCE
    assert abs(stock[1] - fast[1]) <= TOLERANCE * abs(stock[1])
    assert len(stock[3]) == 15 * 2 and stock[3].keys() == fast[3].keys()
    for name, expected in stock[3].items():
        assert relative_error(expected, fast[3][name]) <= TOLERANCE, name


def test_model_files_load_into_stock_links_and_back(tmp_path):
    rng = numpy.random.RandomState(6)
    stock, fast = _link_pair(5, rng)
    stock.N = 3
    path = str(tmp_path / 'bn.npz')
    chainer.serializers.save_npz(path, stock)
    loaded = fn.BatchNormalization(5)
    chainer.serializers.load_npz(path, loaded)
    chainer.serializers.save_npz(path, loaded)
    back = L.BatchNormalization(5)
    chainer.serializers.load_npz(path, back)
    for name in ('gamma', 'beta'):
        assert (getattr(back, name).array == getattr(stock, name).array).all()
    for name in ('avg_mean', 'avg_var'):
        assert (getattr(back, name) == getattr(stock, name)).all()
    assert back.N == loaded.N == 3
    assert sorted(n for n, _ in loaded.namedparams()) == sorted(n for n, _ in stock.namedparams())


def test_stock_functions_run_where_the_fast_path_does_not_apply():
    rng = numpy.random.RandomState(7)
    z = rng.normal(0, 1, (2, 3, 4, 5)).astype(numpy.float32)

    def fast_node(link, z, **kwargs):
        y = link.activate_and_normalize(z, 'leaky_relu', **kwargs)
        return isinstance(y.creator, fn.ActivationBatchNormalization)

    assert fast_node(fn.BatchNormalization(3), z)
    assert isinstance(fn.BatchNormalization(3)(z).creator, fn.ActivationBatchNormalization)
    with chainer.using_config('use_fast_normalization', False):
        assert not fast_node(fn.BatchNormalization(3), z)
    assert not fast_node(fn.BatchNormalization(3), z, finetune=True)
    assert not fast_node(fn.BatchNormalization(3), z.astype(numpy.float64))  # float32 params
    with chainer.using_config('dtype', numpy.float16):
        half = fn.BatchNormalization(3)
    assert not fast_node(half, z.astype(numpy.float16))
    assert not fast_node(fn.BatchNormalization(axis=(0, 2)), z)
    assert not fast_node(fn.BatchNormalization(3), z[:, :, 0])  # 3-D input
    with chainer.using_config('in_recomputing', True):
        assert not fast_node(fn.BatchNormalization(3), z)


@pytest.mark.gpu
@pytest.mark.skipif(not env.cuda_report(0)['cuda_usable'],
                    reason='no usable GPU: {}'.format(env.cuda_report(0)['cuda_problem']))
def test_gpu_arrays_use_the_stock_functions():
    import cupy
    link = fn.BatchNormalization(3)
    link.to_device('@cupy:0')
    y = link.activate_and_normalize(cupy.ones((2, 3, 4, 5), dtype=numpy.float32), 'leaky_relu')
    assert not isinstance(y.creator, fn.ActivationBatchNormalization)
    assert isinstance(y.array, cupy.ndarray)
