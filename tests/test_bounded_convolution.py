"""The GPU path's convolutions (common/bounded_convolution.py) compute what Chainer's stock ones do.

Every test runs on NumPy arrays under common/gpu_path.py's switch (the GPU code path on the CPU),
and again on CuPy arrays under ``pytest -m gpu`` where a GPU is usable:

* ``chainer.gradient_check`` of the three FunctionNodes with the bounded kernels (first and second
  order, float64) for every geometry of the tables and some odd ones, on both sides (input and
  output expansion) and in chunks of 2 of a minibatch of 3 (a chunk and a remainder);
* the links against the stock links (forward, input, weight and bias gradients) on odd shapes,
  with stride, padding and a deconvolution's explicit ``outsize``;
* every box of bc7db4a2 at its real size, and the whole net, against the stock functions;
* the temporaries of each kernel stay within ``CHUNK_BYTES`` (tracemalloc, NumPy only);
* the switch: which kernels and which BatchNormalization the net then runs.
"""
import os
import subprocess
import sys
import tracemalloc

import numpy
import pytest

import common  # noqa: F401  (Chainer compatibility)
import chainer
import chainer.functions as F
import chainer.links as L
from chainer import gradient_check

from common import bounded_convolution as bc
from common import env
from common import fast_convolution as fc
from common import fast_normalization
from common import gpu_path
from conftest import REPOSITORY

GPU = [pytest.mark.gpu,
       pytest.mark.skipif(not env.cuda_report(0)['cuda_usable'],
                          reason='no usable GPU: {}'.format(env.cuda_report(0)['cuda_problem']))]
DEVICES = ['@numpy', pytest.param('@cupy:0', marks=GPU)]

# (ksize, stride, pad): the tables' geometries, then odd ones.
GEOMETRIES = {
    '7x7': (7, 1, 3),                         # enc1, dec1
    '4x4s2': (4, 2, 1),                       # enc2, dec2
    '1x4s2': ((1, 4), (1, 2), (0, 1)),        # enc3-5, dec3-5
    '1x9': ((1, 9), 1, 0),                    # enc6, dec6 of bc7db4a2
    '1x8': ((1, 8), 1, 0),                    # enc7 (tiles its 8 frequencies), enc6 of c9335bce
    '1x1': (1, 1, 0),                         # enc8, dec8
    '2x2s2': (2, 2, 0),                       # stride = kernel, several windows each way
    '3x3s2-uneven': (3, 2, 0),                # the last row and column in no window
    '5x3-mixed': ((5, 3), (1, 2), (2, 0)),    # different strides and pads per axis
    '3x3-pad2': (3, 1, 2),                    # the largest pad the output side allows
    '2x2-pad2': (2, 1, 2),                    # a pad it does not: the input side
}
SMALL_SIZE = {'1x8': (3, 8), '2x2s2': (4, 6)}  # others: 5 x 10
TOLERANCE = 1e-5      # float32, relative to the largest magnitude
TOLERANCE64 = 1e-10   # float64


@pytest.fixture(params=DEVICES)
def device(request):
    """A device; on NumPy, with the GPU code path switched on."""
    device = chainer.get_device(request.param)
    with gpu_path.on_numpy():
        yield device


def relative_error(expected, actual):
    expected, actual = (chainer.backend.CpuDevice().send(a) for a in (expected, actual))
    assert expected.shape == actual.shape
    scale = max(float(numpy.abs(expected).max()), 1e-30)
    return float(numpy.abs(expected - actual).max()) / scale


def _pair(value):
    return value if isinstance(value, tuple) else (value, value)


def _out_size(size, ksize, stride, pad):
    k, s, p = (_pair(v) for v in (ksize, stride, pad))
    return tuple((size[a] + 2 * p[a] - k[a]) // s[a] + 1 for a in range(2))


@pytest.mark.parametrize('side', ['x', 'y'])
@pytest.mark.parametrize('name', sorted(GEOMETRIES))
def test_gradient_check_of_the_bounded_nodes(device, name, side):
    ksize, stride, pad = GEOMETRIES[name]
    kh, kw = _pair(ksize)
    size = SMALL_SIZE.get(name, (5, 10))
    rng = numpy.random.RandomState(0)
    n, c, o = 3, 3, 2  # o < c: the output side applies at stride 1 (as for dec1)
    ho, wo = _out_size(size, ksize, stride, pad)
    x, W, b, gy = (device.send(rng.uniform(-1, 1, shape)) for shape in
                   ((n, c) + size, (o, c, kh, kw), (o,), (n, o, ho, wo)))
    options = dict(dtype=numpy.float64, atol=1e-7, rtol=1e-6)
    bounded = dict(stride=stride, pad=pad, bounded=True)
    with bc.forced(chunk=2, side=side):
        gradient_check.check_backward(
            lambda x, W, b: fc.Convolution2DFunction(**bounded).apply((x, W, b)),
            (x, W, b), gy, **options)
        # The deconvolution of gy with the same W (in = o, out = c) back to x's size.
        gradient_check.check_backward(
            lambda y, W, b: fc.Deconvolution2DFunction(outsize=size, **bounded).apply((y, W, b)),
            (gy, W, device.send(rng.uniform(-1, 1, (c,)))), x, **options)
        gradient_check.check_backward(
            lambda x, gy: fc.Convolution2DGradW(ksize=(kh, kw), **bounded).apply((x, gy)),
            (x, gy), W, **options)
        gradient_check.check_double_backward(
            lambda x, W: fc.Convolution2DFunction(**bounded).apply((x, W)),
            (x, W), gy, (x.copy(), W.copy()), **options)


@pytest.mark.parametrize('side', ['x', 'y'])
@pytest.mark.parametrize('name', sorted(GEOMETRIES))
def test_the_bounded_kernels_equal_the_stock_functions_in_float64(device, name, side):
    ksize, stride, pad = GEOMETRIES[name]
    kh, kw = _pair(ksize)
    rng = numpy.random.RandomState(1)
    size = (9, 13)
    for o in (1, 4):  # one output channel (dec1) and more
        x, W, b = (device.send(rng.uniform(-1, 1, shape)) for shape in
                   ((5, 3) + size, (o, 3, kh, kw), (o,)))
        geometry = fc.Geometry.of(ksize, stride, pad)
        with chainer.using_config('use_fast_convolution', False):  # stock
            xv, Wv = chainer.Variable(x), chainer.Variable(W)
            y = F.convolution_2d(xv, Wv, b, stride, pad)
            gy = device.send(rng.uniform(-1, 1, y.shape))
            y.grad = gy
            y.backward()
        with bc.forced(chunk=2, side=side):
            actual = (bc.conv_forward(x, W, b, geometry),
                      bc.conv_backward_data(gy, W, geometry, size),
                      bc.conv_backward_filter(x, gy, geometry))
        for what, expected, value in zip(('y', 'gx', 'gW'), (y.array, xv.grad, Wv.grad), actual):
            assert type(value) is type(x) and value.dtype == numpy.float64
            error = relative_error(expected, value)
            assert error <= TOLERANCE64, '{} {} o={}: {:.1e}'.format(name, what, o, error)


def _link_pair(op, in_channels, out_channels, ksize, stride, pad, outsize=None):
    """(stock link, fast link) with the same parameters."""
    numpy.random.seed(0)
    if op == 'conv':
        stock = L.Convolution2D(in_channels, out_channels, ksize, stride, pad)
        fast = fc.Convolution2D(in_channels, out_channels, ksize, stride, pad)
    else:
        stock = L.Deconvolution2D(in_channels, out_channels, ksize, stride, pad, outsize=outsize)
        fast = fc.Deconvolution2D(in_channels, out_channels, ksize, stride, pad, outsize=outsize)
    rng = numpy.random.RandomState(2)
    for link in (stock, fast):
        link.W.array[...] = rng.uniform(-1, 1, link.W.shape)
        link.b.array[...] = rng.uniform(-1, 1, link.b.shape)
        rng.seed(2)
    return stock, fast


# (op, in, out, ksize, stride, pad, input size, outsize): odd sizes, one channel out, outsize.
LINK_CASES = {
    'conv-7x7-to-1': ('conv', 5, 1, 7, 1, 3, (9, 13), None),
    'conv-4x4s2': ('conv', 3, 4, 4, 2, 1, (9, 13), None),
    'conv-3x3s2-uneven': ('conv', 3, 4, 3, 2, 0, (10, 9), None),
    'conv-1x4s2': ('conv', 4, 3, (1, 4), (1, 2), (0, 1), (3, 11), None),
    'deconv-4x4s2': ('deconv', 4, 3, 4, 2, 1, (5, 7), None),
    'deconv-4x4s2-outsize': ('deconv', 4, 3, 4, 2, 1, (5, 7), (11, 15)),
    'deconv-3x3s2-outsize': ('deconv', 4, 3, 3, 2, 0, (4, 4), (10, 9)),
    'deconv-1x9': ('deconv', 6, 2, (1, 9), 1, 0, (3, 1), None),
    'deconv-7x7-to-1': ('deconv', 5, 1, 7, 1, 3, (9, 13), None),
}


@pytest.mark.parametrize('chunk', [None, 2])
@pytest.mark.parametrize('case', sorted(LINK_CASES))
def test_the_links_on_the_gpu_path_match_the_stock_links(device, case, chunk):
    op, c, o, ksize, stride, pad, size, outsize = LINK_CASES[case]
    stock, fast = _link_pair(op, c, o, ksize, stride, pad, outsize)
    stock.to_device(device)
    fast.to_device(device)
    rng = numpy.random.RandomState(3)
    x = device.send(rng.uniform(-1, 1, (3, c) + size).astype(numpy.float32))
    results = []
    for link, config in ((stock, False), (fast, True)):
        with chainer.using_config('use_fast_convolution', config), bc.forced(chunk=chunk):
            xv = chainer.Variable(x.copy())
            y = link(xv)
            if config:
                assert isinstance(y.creator, (fc.Convolution2DFunction,
                                              fc.Deconvolution2DFunction)), case
                assert y.creator.bounded
            else:
                assert not isinstance(y.creator, (fc.Convolution2DFunction,
                                                  fc.Deconvolution2DFunction))
            if not results:
                gy = device.send(rng.uniform(-1, 1, y.shape).astype(numpy.float32))
            link.cleargrads()
            y.grad = gy
            y.backward()
            results.append((y.array, xv.grad, link.W.grad, link.b.grad))
    if outsize is not None:
        assert results[1][0].shape[2:] == outsize
    for what, expected, actual in zip(('y', 'gx', 'gW', 'gb'), *results):
        assert actual.dtype == numpy.float32
        error = relative_error(expected, actual)
        assert error <= TOLERANCE, '{} {}: {:.1e}'.format(case, what, error)


@pytest.fixture(scope='module')
def net(bc7db4a2_net):
    numpy.random.seed(0)
    net = bc7db4a2_net()
    rng = numpy.random.RandomState(2)  # BatchNormalization statistics that matter in test mode
    for link in net.links():
        if isinstance(link, L.BatchNormalization):
            link.avg_mean[...] = rng.uniform(-0.1, 0.1, link.avg_mean.shape)
            link.avg_var[...] = rng.uniform(0.5, 1.5, link.avg_var.shape)
    return net


@pytest.fixture(scope='module')
def batch():
    return numpy.random.RandomState(1).uniform(0, numpy.log(1000), (2, 1, 32, 256)).astype('f')


def test_every_box_on_the_gpu_path_matches_stock_at_its_real_size(net, batch, device):
    net = net.copy(mode='copy')
    net.to_device(device)
    h = device.send(batch)
    rng = numpy.random.RandomState(3)
    for box in net.ENCODER + net.DECODER:
        link = net[box.name].conv
        with chainer.no_backprop_mode(), chainer.using_config('use_fast_convolution', False):
            output = link(h).array
        gy = device.send(rng.uniform(-1, 1, output.shape).astype(numpy.float32))
        results = []
        for fast in (False, True):
            with chainer.using_config('use_fast_convolution', fast):
                link.cleargrads()
                xv = chainer.Variable(h.copy())
                y = link(xv)
                assert getattr(y.creator, 'bounded', False) == fast
                y.grad = gy
                y.backward()
                results.append((y.array, xv.grad, link.W.grad.copy(), link.b.grad.copy()))
        for what, expected, actual in zip(('y', 'gx', 'gW', 'gb'), *results):
            error = relative_error(expected, actual)
            assert error <= TOLERANCE, '{} {}: {:.1e}'.format(box.name, what, error)
        h = output


def test_the_whole_net_on_the_gpu_path_matches_stock(net, batch, device):
    # Test mode: BatchNormalization is a fixed affine map, so float32 paths agree closely
    # (tests/test_fast_convolution.py explains training mode's branch flips).
    net = net.copy(mode='copy')
    net.to_device(device)
    x = device.send(batch)
    results = []
    for fast in (False, True):
        with chainer.using_config('use_fast_convolution', fast), \
                chainer.using_config('train', False):
            net.cleargrads()
            y = net(x)
            loss = F.mean_squared_error(y, x)
            loss.backward()
            results.append((y.array, loss.array,
                            {path: param.grad.copy() for path, param in net.namedparams()}))
    (stock_y, stock_loss, stock_grads), (y, loss, grads) = results
    assert relative_error(stock_y, y) <= TOLERANCE
    assert relative_error(stock_loss, loss) <= TOLERANCE
    for path, expected in stock_grads.items():
        error = relative_error(expected, grads[path])
        assert error <= TOLERANCE, '{}: {:.1e}'.format(path, error)


def test_the_switch_runs_the_gpu_path_of_convolutions_and_batch_normalization(net, batch):
    def creators(switch):
        with gpu_path.on_numpy(switch):
            h = net.enc1.conv(batch)
            normalized = net.enc1(batch)
        return h.creator, normalized.creator

    conv, box = creators(False)
    assert isinstance(conv, fc.Convolution2DFunction) and not conv.bounded
    assert isinstance(box, fast_normalization.ActivationBatchNormalization)
    conv, box = creators(True)
    assert isinstance(conv, fc.Convolution2DFunction) and conv.bounded
    assert type(box).__module__.startswith('chainer.functions.normalization')  # Chainer's own
    assert not gpu_path.enabled()  # the block switched it off again


def test_the_switch_from_the_environment():
    code = 'from common import gpu_path; print(gpu_path.enabled())'
    for value, expected in (('1', 'True'),):  # unset: False, as in every other test
        result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                                cwd=REPOSITORY, env=dict(os.environ, GPU_PATH_ON_NUMPY=value))
        assert result.stdout.strip() == expected, result.stderr[-2000:]
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                            cwd=REPOSITORY, env=dict(os.environ, GPU_PATH_ON_NUMPY='yes'))
    assert result.returncode != 0 and "GPU_PATH_ON_NUMPY='yes': must be 0 or 1" in result.stderr


# name: (x shape, W shape, stride, pad): dec1 and enc2 at minibatch 12 and a quarter of the width
# (enc2's data gradient is dec2's forward pass).
BUDGET_CASES = {
    'dec1': ((12, 32, 32, 64), (1, 32, 7, 7), 1, 3),
    'enc2': ((12, 32, 32, 64), (64, 32, 4, 4), 2, 1),
}


@pytest.mark.parametrize('case', sorted(BUDGET_CASES))
def test_the_temporaries_of_each_kernel_stay_within_the_budget(case, monkeypatch):
    budget = 4 * 2 ** 20  # a few samples per chunk
    monkeypatch.setattr(bc, 'CHUNK_BYTES', budget)
    x_shape, w_shape, stride, pad = BUDGET_CASES[case]
    rng = numpy.random.RandomState(0)
    x = rng.uniform(-1, 1, x_shape).astype(numpy.float32)
    W = rng.uniform(-1, 1, w_shape).astype(numpy.float32)
    geometry = fc.Geometry.of(w_shape[2:], stride, pad)
    gy = rng.uniform(-1, 1, (x_shape[0], w_shape[0]) + geometry.out_size(*x_shape[2:])) \
        .astype(numpy.float32)
    sample_col = numpy.prod(w_shape[1:]) * numpy.prod(gy.shape[2:]) * 4  # stock im2col per sample
    calls = {'forward': lambda: bc.conv_forward(x, W, None, geometry),
             'data gradient': lambda: bc.conv_backward_data(gy, W, geometry, x_shape[2:]),
             'filter gradient': lambda: bc.conv_backward_filter(x, gy, geometry)}
    for what, call in calls.items():
        tracemalloc.start()
        try:
            result = call()
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        temporaries = peak - result.nbytes
        # Stock im2col would hold the whole minibatch's columns (12 x 1 to 12.5 MiB here).
        assert temporaries <= budget + 64 * 1024 < x_shape[0] * sample_col, \
            '{} {}: {} bytes of temporaries'.format(case, what, temporaries)
