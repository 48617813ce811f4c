"""common/fast_convolution.py computes what Chainer's stock convolution links compute.

* gradient_check of the three FunctionNodes (float64, small shapes) for every kernel / stride /
  pad combination of the bc7db4a2 table, through every code path (layouts "sample" and "rows",
  sides "x" and "y");
* stock vs fast outputs and gradients of every box of the table at its real size (batch 2,
  float32), and of the whole network with its MSE loss;
* a model.npz written by the fast net loads into a net built with the stock links;
* the stock functions still run wherever the fast path does not apply.

tests/test_bounded_convolution.py covers the GPU path's kernels (CuPy, and NumPy under the switch).
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
from common import autoencoder
from common import fast_convolution as fc

# Every (ksize, stride, pad) of the bc7db4a2 table.
GEOMETRIES = [
    (7, 1, 3),                     # enc1, dec1
    (4, 2, 1),                     # enc2, dec2
    ((1, 4), (1, 2), (0, 1)),      # enc3-5, dec3-5
    ((1, 9), 1, 0),                # enc6, dec6
    ((1, 8), 1, 0),                # enc7, dec7
    (1, 1, 0),                     # enc8, dec8
    (2, 2, 0),                     # stride = kernel, several windows per row and column
]
GEOMETRY_IDS = ['7x7', '4x4s2', '1x4s2', '1x9', '1x8', '1x1', '2x2s2']
# Every code path: None lets the cost rule choose; 'y' falls back to 'x' where it cannot apply.
PATHS = [(None, None), ('sample', 'x'), ('sample', 'y'), ('rows', 'x')]
PATH_IDS = ['auto', 'sample-x', 'sample-y', 'rows-x']
# Input sizes (H, W) of the small checks: the 1x8 kernel covers the 8 frequencies exactly
# (as enc7's does), the 2x2 windows of stride 2 tile a 4 x 6 input, the others see more.
SMALL_SIZE = {'1x8': (3, 8), '2x2s2': (4, 6)}
TOLERANCE = 1e-5  # stock vs fast, relative to the largest magnitude


def relative_error(expected, actual):
    expected, actual = numpy.asarray(expected), numpy.asarray(actual)
    assert expected.shape == actual.shape
    scale = max(float(numpy.abs(expected).max()), 1e-30)
    return float(numpy.abs(expected - actual).max()) / scale


def _stock_output_size(size, ksize, stride, pad):
    k, s, p = (v if isinstance(v, tuple) else (v, v) for v in (ksize, stride, pad))
    return tuple((size[a] + 2 * p[a] - k[a]) // s[a] + 1 for a in range(2))


@pytest.mark.parametrize('layout,side', PATHS, ids=PATH_IDS)
@pytest.mark.parametrize('geometry', GEOMETRIES, ids=GEOMETRY_IDS)
def test_gradient_check_of_the_function_nodes(geometry, layout, side):
    ksize, stride, pad = geometry
    kh, kw = ksize if isinstance(ksize, tuple) else (ksize, ksize)
    size = SMALL_SIZE.get(GEOMETRY_IDS[GEOMETRIES.index(geometry)], (5, 10))
    rng = numpy.random.RandomState(0)
    n, c, o = 2, 3, 2  # o < c: the 'y' side applies to stride 1 (as for dec1)
    ho, wo = _stock_output_size(size, ksize, stride, pad)
    x = rng.uniform(-1, 1, (n, c) + size)
    W = rng.uniform(-1, 1, (o, c, kh, kw))
    b = rng.uniform(-1, 1, (o,))
    gy = rng.uniform(-1, 1, (n, o, ho, wo))
    options = dict(dtype=numpy.float64, atol=1e-7, rtol=1e-6)
    with fc.forced(layout, side):
        gradient_check.check_backward(
            lambda x, W, b: fc.Convolution2DFunction(stride, pad).apply((x, W, b)),
            (x, W, b), gy, **options)
        # The deconvolution of gy with the same W (in = o, out = c) back to x's size.
        gradient_check.check_backward(
            lambda y, W, b: fc.Deconvolution2DFunction(stride, pad, size).apply((y, W, b)),
            (gy, W, rng.uniform(-1, 1, (c,))), x, **options)
        gradient_check.check_backward(
            lambda x, gy: fc.Convolution2DGradW(stride, pad, (kh, kw)).apply((x, gy)),
            (x, gy), W, **options)
        # Second order: the backward passes are built from the same FunctionNodes.
        gradient_check.check_double_backward(
            lambda x, W: fc.Convolution2DFunction(stride, pad).apply((x, W)),
            (x, W), gy, (x.copy(), W.copy()), **options)


def test_deconvolution_with_an_explicit_outsize_and_uneven_convolution_matches_stock():
    # 3x3 kernel, stride 2, no padding, 10 rows: the windows end at row 8, so the convolution
    # ignores row 9; its data gradient, and a deconvolution with outsize 10 (not the default 9),
    # must give that row zero.
    rng = numpy.random.RandomState(0)
    x = rng.uniform(-1, 1, (2, 3, 10, 9)).astype(numpy.float32)
    W = rng.uniform(-1, 1, (4, 3, 3, 3)).astype(numpy.float32)
    results = {}
    for fast in (False, True):
        with chainer.using_config('use_fast_convolution', fast):
            xv = chainer.Variable(x)
            y = fc.convolution_2d(xv, W, None, 2, 0)
            y.grad = numpy.ones_like(y.array)
            y.backward()
            z = fc.deconvolution_2d(y.array, W, None, 2, 0, outsize=(10, 9))
        assert isinstance(y.creator, fc.Convolution2DFunction) == fast
        assert isinstance(z.creator, fc.Deconvolution2DFunction) == fast
        results[fast] = (xv.grad, z.array)
    for expected, actual in zip(results[False], results[True]):
        assert actual.shape == (2, 3, 10, 9)
        assert relative_error(expected, actual) <= TOLERANCE
        assert not actual[:, :, 9].any()


def test_the_small_checks_reach_the_tiles_and_pointwise_shortcuts():
    # The gradient checks above go through Geometry.tiles (col2im as one transposing copy) for
    # 1x8 and 2x2s2 with several windows per row, and through the 1x1 (pointwise) branches;
    # Chainer's own convolution tests use no such shapes.
    def geometry_and_sizes(name):
        ksize, stride, pad = GEOMETRIES[GEOMETRY_IDS.index(name)]
        size = SMALL_SIZE.get(name, (5, 10))
        return fc.Geometry.of(ksize, stride, pad), size, _stock_output_size(size, ksize, stride,
                                                                             pad)

    for name in ('1x8', '2x2s2'):
        geometry, size, out = geometry_and_sizes(name)
        assert geometry.tiles(*size, *out) and not geometry.is_pointwise, name
    geometry, size, out = geometry_and_sizes('2x2s2')
    assert out[0] > 1 and out[1] > 1  # the stride == kernel clause, not only one window
    assert geometry_and_sizes('1x1')[0].is_pointwise
    for name in ('7x7', '4x4s2', '1x4s2', '1x9'):
        geometry, size, out = geometry_and_sizes(name)
        assert not geometry.tiles(*size, *out), name


@pytest.mark.parametrize('through', ['function', 'link'])
def test_deconvolution_with_an_outsize_only_cover_all_explains_runs_the_stock_function(through):
    # The convolution (cover_all=False) of a 6 x 5 input with 3x3 windows, stride 2, pad 1
    # is 3 x 3; only with cover_all=True is it this x's 4 x 3.  Stock Chainer accepts this
    # outsize, and so must the fast function: it hands the call to the stock one.
    rng = numpy.random.RandomState(0)
    x = rng.uniform(-1, 1, (2, 3, 4, 3)).astype(numpy.float32)
    W = rng.uniform(-1, 1, (3, 2, 3, 3)).astype(numpy.float32)
    b = rng.uniform(-1, 1, (2,)).astype(numpy.float32)
    gy = rng.uniform(-1, 1, (2, 2, 6, 5)).astype(numpy.float32)
    results = []
    for deconvolution in (F.deconvolution_2d, fc.deconvolution_2d):
        if through == 'link':
            link = (L.Deconvolution2D if deconvolution is F.deconvolution_2d
                    else fc.Deconvolution2D)(3, 2, 3, stride=2, pad=1, outsize=(6, 5))
            link.W.array[...], link.b.array[...] = W, b
            link.cleargrads()
            params = link.W, link.b
            call = link
        else:
            params = chainer.Variable(W), chainer.Variable(b)
            call = lambda x: deconvolution(x, *params, stride=2, pad=1, outsize=(6, 5))  # noqa
        xv = chainer.Variable(x)
        y = call(xv)
        assert not isinstance(y.creator, fc.Deconvolution2DFunction)
        y.grad = gy
        y.backward()
        results.append((y.array, xv.grad, params[0].grad, params[1].grad))
    for expected, actual in zip(*results):
        assert actual.shape == expected.shape
        assert relative_error(expected, actual) <= TOLERANCE
    assert results[0][0].shape == (2, 2, 6, 5)
    # An outsize that the cover_all=False convolution explains still takes the fast path.
    y = fc.deconvolution_2d(x, W, b, stride=2, pad=1, outsize=(7, 5))
    assert isinstance(y.creator, fc.Deconvolution2DFunction) and y.shape == (2, 2, 7, 5)


@pytest.fixture(scope='module')
def net(bc7db4a2_net):
    """The bc7db4a2 net with the fast links (the default of common/autoencoder.py)."""
    numpy.random.seed(0)
    net = bc7db4a2_net()
    # Non-trivial BatchNormalization statistics, so that test-mode outputs depend on them.
    rng = numpy.random.RandomState(2)
    for link in net.links():
        if isinstance(link, L.BatchNormalization):
            link.avg_mean[...] = rng.uniform(-0.1, 0.1, link.avg_mean.shape)
            link.avg_var[...] = rng.uniform(0.5, 1.5, link.avg_var.shape)
    return net


@pytest.fixture(scope='module')
def batch():
    return numpy.random.RandomState(1).uniform(0, numpy.log(1000), (2, 1, 32, 256)).astype('f')


def test_the_net_is_built_with_fast_subclasses_of_the_stock_links(net):
    for box in net.ENCODER + net.DECODER:
        conv = net[box.name].conv
        stock = L.Convolution2D if box.op == 'conv' else L.Deconvolution2D
        fast = fc.Convolution2D if box.op == 'conv' else fc.Deconvolution2D
        assert type(conv) is fast and isinstance(conv, stock)


def _layer_inputs(net, batch):
    """The input of every box of the table during a forward pass of the batch."""
    inputs = []
    with chainer.no_backprop_mode(), chainer.using_config('use_fast_convolution', False):
        h = batch
        for box in net.ENCODER + net.DECODER:
            inputs.append(h)
            h = net[box.name].conv(h).array
    return inputs


def _run(link, x, gy, fast):
    y, gx, grads = forward_backward(link, x, gy, use_fast_convolution=fast)
    fast_creator = isinstance(y.creator, (fc.Convolution2DFunction, fc.Deconvolution2DFunction))
    assert fast_creator == fast
    return y.array, gx, grads['/W'], grads['/b']


def test_every_layer_of_the_table_matches_stock_at_its_real_size(net, batch):
    rng = numpy.random.RandomState(3)
    for box, x in zip(net.ENCODER + net.DECODER, _layer_inputs(net, batch)):
        link = net[box.name].conv
        with chainer.no_backprop_mode():
            shape = link(x).shape
        gy = rng.uniform(-1, 1, shape).astype(numpy.float32)
        stock = _run(link, x, gy, fast=False)
        fast = _run(link, x, gy, fast=True)
        for name, expected, actual in zip(('y', 'gx', 'gW', 'gb'), stock, fast):
            assert actual.dtype == numpy.float32
            error = relative_error(expected, actual)
            assert error <= TOLERANCE, '{} {}: relative error {:.2e}'.format(box.name, name, error)
    net.cleargrads()


def _whole_net(net, batch, fast):
    """Output, MSE loss and parameter gradients of the net on the batch, stock or fast
    convolutions (the activations and BatchNormalizations stock: tests/test_fast_normalization.py
    covers theirs), so that each box applies its ``activation`` attribute."""
    with chainer.using_config('use_fast_convolution', fast), \
            chainer.using_config('use_fast_normalization', False):
        net.cleargrads()
        output = net(batch)
        loss = F.mean_squared_error(output, batch)
        loss.backward()
    grads = {path: param.grad.copy() for path, param in net.namedparams()}
    net.cleargrads()
    return output.array, float(loss.array), grads


def test_whole_net_matches_stock_with_fixed_batch_statistics(net, batch):
    # BatchNormalization with its running statistics (test mode) is a fixed affine map, so the
    # whole backward pass is well conditioned and stock and fast must agree to float32 rounding.
    with chainer.using_config('train', False):
        stock_y, stock_loss, stock_grads = _whole_net(net, batch, fast=False)
        fast_y, fast_loss, fast_grads = _whole_net(net, batch, fast=True)
    assert relative_error(stock_y, fast_y) <= TOLERANCE
    assert abs(fast_loss - stock_loss) <= TOLERANCE * abs(stock_loss)
    assert stock_grads.keys() == fast_grads.keys() and len(stock_grads) == 16 * 2 + 15 * 2
    for path, expected in stock_grads.items():
        error = relative_error(expected, fast_grads[path])
        assert error <= TOLERANCE, '{}: relative error {:.2e}'.format(path, error)


def test_whole_net_in_training_mode_is_as_accurate_as_stock(net, batch):
    # With batch statistics (training), float32 gradients are not a continuous function of the
    # arithmetic: of the ~3.5 million LeakyReLU inputs of a forward pass at minibatch 2, a few lie
    # within float32 rounding of 0, so a float32 path can take the other branch (slope 0.2
    # instead of 1) than float64 does.  That moves the gradients of that box and of every box
    # before it by up to 1e-1 of their size, for stock and fast alike, so comparing float32
    # gradients with float64 is a matter of luck.  Measured on 9 passes (6 seeds with NumPy 2.5.5
    # and OpenBLAS 0.3.34, 3 with NumPy 2.2.6 and OpenBLAS 0.3.29): 0-5 such inputs per float32
    # pass (|x| down to 1e-7 of its channel's spread); gradients 8e-3 to 9.7e-2 from float64
    # with one or more, 1.2e-5 to 2.9e-5 with none.  What holds on every BLAS:
    # - float64: fast and stock compute the same outputs and gradients (measured <= 4.4e-14);
    # - float32: outputs and loss within TOLERANCE of stock and of float64 (the forward pass is
    #   continuous, whichever branch an input near 0 takes);
    # - float32: fast's gradients are the float64 gradients of the branches that fast's own
    #   forward pass took, to SAME_BRANCH (measured <= 2.9e-5 for either path on all 9 passes,
    #   the worst dec2's or dec3's bias, whose gradients are sums of 16384 terms that largely
    #   cancel).
    EXACT, SAME_BRANCH, SLOPE = 1e-12, 2e-4, 0.2  # SLOPE: F.leaky_relu's default
    leaky = [box.name for box in net.ENCODER + net.DECODER if box.activation == 'leaky_relu']
    net64 = copy.deepcopy(net)
    for param in net64.params():
        param.array = param.array.astype(numpy.float64)
    batch64 = batch.astype(numpy.float64)

    stock_y, stock_loss, _ = _whole_net(net, batch, fast=False)
    branches = {}  # box name -> where its LeakyReLU took slope 1, in fast's float32 pass

    def recording(name):
        def leaky_relu(x):
            branches[name] = x.array >= 0
            return F.leaky_relu(x, SLOPE)
        return leaky_relu

    for name in leaky:
        net[name].activation = recording(name)
    try:
        fast_y, fast_loss, fast_grads = _whole_net(net, batch, fast=True)
    finally:
        for name in leaky:
            net[name].activation = F.leaky_relu
    assert sorted(branches) == sorted(leaky)
    assert relative_error(stock_y, fast_y) <= TOLERANCE
    assert abs(fast_loss - stock_loss) <= TOLERANCE * abs(stock_loss)

    y64, loss64, grads64 = _whole_net(net64, batch64, fast=False)
    fast_y64, fast_loss64, fast_grads64 = _whole_net(net64, batch64, fast=True)
    with chainer.using_config('use_fast_convolution', True):  # float64 takes the fast path
        assert isinstance(net64.enc1.conv(batch64).creator, fc.Convolution2DFunction)
        assert isinstance(net64.dec3.conv(numpy.zeros((1, 64, 16, 64))).creator,
                          fc.Deconvolution2DFunction)
    assert relative_error(y64, fast_y64) <= EXACT
    assert abs(fast_loss64 - loss64) <= EXACT * abs(loss64)
    for path, exact in grads64.items():
        error = relative_error(exact, fast_grads64[path])
        assert error <= EXACT, '{}: float64 fast vs stock {:.1e}'.format(path, error)
    assert relative_error(y64, fast_y) <= TOLERANCE
    assert abs(fast_loss - loss64) <= TOLERANCE * abs(loss64)

    for name in leaky:  # float64 through the branches that fast's float32 pass took
        slopes = numpy.where(branches[name], 1.0, SLOPE)
        net64[name].activation = lambda x, slopes=slopes: x * slopes
    _, _, same_branch64 = _whole_net(net64, batch64, fast=True)
    del net64
    for path, reference in same_branch64.items():
        error = relative_error(reference, fast_grads[path])
        assert error <= SAME_BRANCH, \
            '{}: fast float32 {:.1e} from float64 on the same branches'.format(path, error)


def test_model_saved_from_the_fast_net_loads_into_stock_links(net, batch, bc7db4a2_net,
                                                              tmp_path, monkeypatch):
    path = str(tmp_path / 'model.npz')
    chainer.serializers.save_npz(path, net, compression=False)
    monkeypatch.setattr(autoencoder, 'CONVOLUTIONS', autoencoder.STOCK_CONVOLUTIONS)
    stock_net = bc7db4a2_net()
    assert type(stock_net.enc1.conv) is L.Convolution2D
    assert type(stock_net.dec2.conv) is L.Deconvolution2D
    chainer.serializers.load_npz(path, stock_net)
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        expected = net(batch).array
        actual = stock_net(batch).array
    assert relative_error(expected, actual) <= TOLERANCE
    for (name, a), (_, b) in zip(sorted(net.namedparams()), sorted(stock_net.namedparams())):
        assert a.shape == b.shape and (a.array == b.array).all(), name


def test_stock_functions_run_where_the_fast_path_does_not_apply():
    rng = numpy.random.RandomState(0)
    x = rng.uniform(-1, 1, (2, 4, 6, 6)).astype(numpy.float32)

    def creator(link, x):
        return type(link(x).creator)

    assert creator(fc.Convolution2D(4, 4, 3), x) is fc.Convolution2DFunction
    assert creator(fc.Deconvolution2D(4, 4, 3), x) is fc.Deconvolution2DFunction
    # Dilation and groups: Chainer's own functions.
    assert creator(fc.Convolution2D(4, 4, 3, dilate=2), x) is not fc.Convolution2DFunction
    assert creator(fc.Convolution2D(4, 4, 3, groups=2), x) is not fc.Convolution2DFunction
    assert creator(fc.Deconvolution2D(4, 4, 3, groups=2), x) is not fc.Deconvolution2DFunction
    # Other dtypes, the configuration switch, cover_all.
    with chainer.using_config('dtype', numpy.float16):
        half = fc.Convolution2D(4, 4, 3)
    assert creator(half, x.astype(numpy.float16)) is not fc.Convolution2DFunction
    with chainer.using_config('use_fast_convolution', False):
        assert creator(fc.Convolution2D(4, 4, 3), x) is not fc.Convolution2DFunction
    W = rng.uniform(-1, 1, (4, 4, 3, 3)).astype(numpy.float32)
    assert type(fc.convolution_2d(x, W, cover_all=True).creator) is not fc.Convolution2DFunction
    # A link whose in_channels is given by its first input.
    lazy = fc.Convolution2D(None, 3, 3, pad=1)
    assert creator(lazy, x) is fc.Convolution2DFunction and lazy.W.shape == (3, 4, 3, 3)


@pytest.mark.gpu
@pytest.mark.skipif(not env.cuda_report(0)['cuda_usable'],
                    reason='no usable GPU: {}'.format(env.cuda_report(0)['cuda_problem']))
def test_gpu_arrays_use_the_bounded_kernels_or_the_stock_functions_when_switched_off():
    import cupy
    link = fc.Convolution2D(4, 4, 3)
    link.to_device('@cupy:0')
    x = cupy.ones((2, 4, 6, 6), dtype=numpy.float32)
    y = link(x)
    assert type(y.creator) is fc.Convolution2DFunction and y.creator.bounded
    assert isinstance(y.array, cupy.ndarray)
    with chainer.using_config('use_fast_convolution', False):
        assert type(link(x).creator) is not fc.Convolution2DFunction
