"""Faster CPU convolution and deconvolution for Chainer, with the parameters of the stock links.

Chainer 7.8.1 computes a CPU convolution as im2col followed by ``numpy.tensordot`` over the
(channel, kernel row, kernel column) axes of a (N, C, kh, kw, out_h, out_w) array.  tensordot
transposes that array into a matrix first, which is a second full copy with cache-hostile strides,
and it returns the output in (N, out_h, out_w, O) order, so every later elementwise operation runs
on a transposed array.  For the 7x7 output layer of bc7db4a2 (32 channels in, 1 out) the im2col
array alone is 2.5 GB at minibatch 50.  This module computes the same mathematics with one BLAS
GEMM per step on arrays laid out for it:

* Layout "sample" (many output positions per sample, P = out_h * out_w >= ``ROWS_BELOW``):
  a loop over the samples of the minibatch; each sample's im2col matrix (C kh kw, P) is copied
  from a ``numpy.lib.stride_tricks.as_strided`` view of the (padded) sample into a buffer that is
  reused, so it stays in cache, and ``W (O, C kh kw) @ col`` is written straight into the sample's
  slice of the (N, O, out_h, out_w) output.  The data gradient is ``W.T @ gy[n]`` scattered back
  ("col2im", kh * kw strided additions); the filter gradient sums ``gy[n] @ col.T``.
* Layout "rows" (few output positions per sample: the "frequency full connection" layers whose
  1xk kernels span the whole remaining frequency axis, and the 1x1 layers): one GEMM for the
  whole minibatch, ``col (N P, C kh kw) @ W.T``, whose rows are the output positions; only the
  (small) input and output are transposed, never the weight (BLAS reads ``W.T`` in place).  When
  the kernel tiles the input exactly (stride == kernel, no padding: enc7, dec7, 1x1) col2im is a
  single transposing copy.
* Side "y" (stride 1 and fewer output than input channels, e.g. dec1: 32 channels -> 1, 7x7):
  instead of expanding the input kh * kw times, the GEMM runs on the unexpanded padded input and
  the kh * kw shifted partial products are summed on the (small) output side.  Its data gradient
  is the stride-1 convolution of ``gy`` with the flipped kernel, and its filter gradient expands
  ``gy`` (1 channel) instead of ``x`` (32 channels).

The three products (forward, data gradient, filter gradient) are FunctionNodes whose backward
passes are built from each other, as in Chainer's own Convolution2DFunction, so gradients of any
order are right.  :class:`Convolution2D` and :class:`Deconvolution2D` subclass the stock links
(same parameters W, b with the same shapes and names, so model.npz files and snapshots load into
either).

On CuPy arrays (the GPU) the same nodes compute with :mod:`common.bounded_convolution`'s kernels,
written once with ``xp``, whose temporaries stay within a fixed budget (Chainer's own GPU
convolution builds the im2col array of the whole minibatch, 2.4 GiB for dec1 at minibatch 50).
Under :mod:`common.gpu_path`'s switch NumPy arrays take those kernels too, so the CPU runs the GPU
path.  The stock functions run whenever this module does not apply: ChainerX arrays, dilation,
groups, a channels-last layout, iDeep, dtypes other than float32/float64, or
``chainer.config.use_fast_convolution`` set to False (on CPU and GPU alike).
"""
import collections

import numpy
from numpy.lib.stride_tricks import as_strided

import common  # noqa: F401  (Chainer compatibility)
import chainer
import chainer.functions as F
import chainer.links as L
from chainer import backend
from chainer import function_node
from chainer.backends import cuda
from chainer.backends import intel64
from chainer.utils import type_check

from common import bounded_convolution
from common import gpu_path

#: Output positions per sample (out_h * out_w) below which the whole minibatch is one GEMM.
ROWS_BELOW = 256

CONFIG_KEY = 'use_fast_convolution'  # chainer.config.use_fast_convolution: False -> stock links
DTYPES = (numpy.float32, numpy.float64)

# Tests set these to reach every code path on small shapes: None lets the cost rule choose.
_FORCE = {'layout': None, 'side': None}


def forced(layout=None, side=None):
    """Force layout ('sample' or 'rows') and side ('x' or 'y', where applicable); for tests."""
    return bounded_convolution.override(_FORCE, layout=layout, side=side)


def _pair(value):
    if hasattr(value, '__getitem__'):
        return int(value[0]), int(value[1])
    return int(value), int(value)


class Geometry(collections.namedtuple('Geometry', 'kh kw sy sx ph pw')):
    """Kernel size, stride and padding of a convolution (the conv view of a deconvolution)."""

    @classmethod
    def of(cls, ksize, stride, pad):
        (kh, kw), (sy, sx), (ph, pw) = _pair(ksize), _pair(stride), _pair(pad)
        return cls(kh, kw, sy, sx, ph, pw)

    def out_size(self, h, w):
        """Output size of the convolution of an h x w input (Chainer's cover_all=False)."""
        return ((h + 2 * self.ph - self.kh) // self.sy + 1,
                (w + 2 * self.pw - self.kw) // self.sx + 1)

    def deconv_out_size(self, h, w):
        """Chainer's default output size of a deconvolution of an h x w input."""
        return self.sy * (h - 1) + self.kh - 2 * self.ph, self.sx * (w - 1) + self.kw - 2 * self.pw

    @property
    def taps(self):
        return [(i, j) for i in range(self.kh) for j in range(self.kw)]

    @property
    def is_pointwise(self):
        return self == (1, 1, 1, 1, 0, 0)

    def tiles(self, h, w, ho, wo):
        """The ho x wo kernel windows cover the h x w input exactly once (no overlap, no gap,
        no padding), as the 1x8 window of enc7 covers its 8 frequencies, and 1x1 kernels."""
        return (self.ph == self.pw == 0 and ho * self.kh == h and wo * self.kw == w
                and (ho == 1 or self.sy == self.kh) and (wo == 1 or self.sx == self.kw))


# ------------------------------------------------------------------------------------------------
# NumPy kernels.  Conv view: x (N, C, H, W), W (O, C, kh, kw), y (N, O, ho, wo).
# A deconvolution of x' (N, O, ho, wo) with its W (O, C, kh, kw) is the data gradient of this view.
# ------------------------------------------------------------------------------------------------

def _layout(positions):
    if _FORCE['layout']:
        return _FORCE['layout']
    return 'rows' if positions < ROWS_BELOW else 'sample'


def _y_side(geometry, in_channels, out_channels, layout):
    """Expand the output side instead of the input (stride 1, fewer output channels)."""
    if geometry.sy != 1 or geometry.sx != 1 or layout != 'sample':
        return False
    if geometry.ph > geometry.kh - 1 or geometry.pw > geometry.kw - 1:
        return False
    if _FORCE['side']:
        return _FORCE['side'] == 'y'
    return out_channels < in_channels


def _pad(x, g):
    """Zero-padded copy of a (N, C, H, W) batch, or x itself without padding."""
    if g.ph == 0 and g.pw == 0:
        return x
    n, c, h, w = x.shape
    xp = numpy.zeros((n, c, h + 2 * g.ph, w + 2 * g.pw), dtype=x.dtype)
    xp[:, :, g.ph:g.ph + h, g.pw:g.pw + w] = x
    return xp


class _PaddedSample:
    """A reusable (C, H + 2 ph, W + 2 pw) buffer whose border stays zero."""

    def __init__(self, x, g):
        self.g = g
        n, c, h, w = x.shape
        self.h, self.w = h, w
        if g.ph == 0 and g.pw == 0:
            self.buffer = None
        else:
            self.buffer = numpy.zeros((c, h + 2 * g.ph, w + 2 * g.pw), dtype=x.dtype)

    def __call__(self, sample):
        if self.buffer is None:
            return sample
        g = self.g
        self.buffer[:, g.ph:g.ph + self.h, g.pw:g.pw + self.w] = sample
        return self.buffer


def _sample_col_view(xp_n, g, ho, wo):
    """(C, kh, kw, ho, wo) view of a padded sample: col[c, i, j, h, w] = xp[c, h sy + i, w sx + j].
    """
    sc, sh, sw = xp_n.strides
    return as_strided(xp_n, (xp_n.shape[0], g.kh, g.kw, ho, wo),
                      (sc, sh, sw, sh * g.sy, sw * g.sx), writeable=False)


def _rows_col_view(xp, g, ho, wo):
    """(N, ho, wo, C, kh, kw) view of a padded batch: rows are output positions."""
    sn, sc, sh, sw = xp.strides
    return as_strided(xp, (xp.shape[0], ho, wo, xp.shape[1], g.kh, g.kw),
                      (sn, sh * g.sy, sw * g.sx, sc, sh, sw), writeable=False)


def _to_rows(a):
    """(N, C, h, w) -> contiguous (N h w, C)."""
    n, c, h, w = a.shape
    return numpy.ascontiguousarray(a.transpose(0, 2, 3, 1)).reshape(n * h * w, c)


def _from_rows(a2, n, h, w):
    """(N h w, C) -> contiguous (N, C, h, w)."""
    return numpy.ascontiguousarray(a2.reshape(n, h, w, -1).transpose(0, 3, 1, 2))


def _col2im_sample(gcol, gxp_n, g, ho, wo):
    """Scatter-add a (C kh kw, ho wo) column matrix into a zeroed padded sample (C, Hp, Wp)."""
    g5 = gcol.reshape(gxp_n.shape[0], g.kh, g.kw, ho, wo)
    for i, j in g.taps:
        gxp_n[:, i:i + g.sy * ho:g.sy, j:j + g.sx * wo:g.sx] += g5[:, i, j]


def _rows_col(x, g, ho, wo):
    """im2col of the whole minibatch as rows: (N ho wo, C kh kw)."""
    if g.is_pointwise:
        return _to_rows(x)
    n, c = x.shape[:2]
    col = numpy.ascontiguousarray(_rows_col_view(_pad(x, g), g, ho, wo))
    return col.reshape(n * ho * wo, c * g.kh * g.kw)


def _sample_cols(x, g, ho, wo):
    """(s, im2col of sample s as (C kh kw, ho wo)) for each sample, in one reused buffer."""
    n, c = x.shape[:2]
    if g.is_pointwise:
        for s in range(n):
            yield s, x[s].reshape(c, ho * wo)
        return
    padded = _PaddedSample(x, g)
    col = numpy.empty((c, g.kh, g.kw, ho, wo), dtype=x.dtype)
    for s in range(n):
        numpy.copyto(col, _sample_col_view(padded(x[s]), g, ho, wo))
        yield s, col.reshape(c * g.kh * g.kw, ho * wo)


def conv_forward(x, W, b, geometry):
    """y = convolution of x (N, C, H, W) with W (O, C, kh, kw), plus b (O,) if given."""
    g = geometry
    n, c, h, w = x.shape
    o = W.shape[0]
    ho, wo = g.out_size(h, w)
    bounded_convolution.check_out_size(ho, wo)
    p = ho * wo
    k = c * g.kh * g.kw
    layout = _layout(p)
    if layout == 'rows':
        col = _rows_col(x, g, ho, wo)
        y2 = numpy.matmul(col, W.reshape(o, k).T)
        if b is not None:
            y2 += b
        return _from_rows(y2, n, ho, wo)

    y = numpy.empty((n, o, ho, wo), dtype=x.dtype)
    y3 = y.reshape(n, o, p)
    if _y_side(g, c, o, layout):
        # z[(o, i, j), (hp, wp)] = sum_c W[o, c, i, j] xp[c, hp, wp]; y[o, h, w] = sum z shifted.
        padded = _PaddedSample(x, g)
        wt = numpy.ascontiguousarray(W.transpose(0, 2, 3, 1)).reshape(o * g.kh * g.kw, c)
        hp, wp = h + 2 * g.ph, w + 2 * g.pw
        z = numpy.empty((o * g.kh * g.kw, hp * wp), dtype=x.dtype)
        z5 = z.reshape(o, g.kh, g.kw, hp, wp)
        for s in range(n):
            xp_n = numpy.ascontiguousarray(padded(x[s]))
            numpy.matmul(wt, xp_n.reshape(c, hp * wp), out=z)
            y_n = y[s]
            for t, (i, j) in enumerate(g.taps):
                window = z5[:, i, j, i:i + g.sy * ho:g.sy, j:j + g.sx * wo:g.sx]
                if t == 0:
                    y_n[...] = window
                else:
                    y_n += window
    else:
        wm = W.reshape(o, k)
        for s, col_n in _sample_cols(x, g, ho, wo):
            numpy.matmul(wm, col_n, out=y3[s])
    if b is not None:
        y3 += b[:, None]
    return y


def conv_backward_data(gy, W, geometry, out_hw):
    """gx (N, C, H, W) of a convolution with W (O, C, kh, kw), from gy (N, O, ho, wo).

    This is also the forward pass of a deconvolution of gy with W (Chainer's deconvolution W
    is (in, out, kh, kw), which is this conv view's (O, C, kh, kw)).
    """
    g = geometry
    n, o, ho, wo = gy.shape
    c = W.shape[1]
    h, w = out_hw
    if g.out_size(h, w) != (ho, wo):
        raise ValueError('output size {} x {} does not match input {} x {} for {}'.format(
            h, w, ho, wo, g))
    p = ho * wo
    k = c * g.kh * g.kw
    hp, wp = h + 2 * g.ph, w + 2 * g.pw
    layout = _layout(p)
    if layout == 'rows':
        gcol = numpy.matmul(_to_rows(gy), W.reshape(o, k))  # (N P, C kh kw)
        if g.is_pointwise:
            return _from_rows(gcol, n, ho, wo)
        g6 = gcol.reshape(n, ho, wo, c, g.kh, g.kw)
        if g.tiles(h, w, ho, wo):  # col2im is one transposing copy
            return numpy.ascontiguousarray(g6.transpose(0, 3, 1, 4, 2, 5)).reshape(n, c, h, w)
        gxp = numpy.zeros((n, c, hp, wp), dtype=gy.dtype)
        for i, j in g.taps:
            gxp[:, :, i:i + g.sy * ho:g.sy, j:j + g.sx * wo:g.sx] += \
                g6[:, :, :, :, i, j].transpose(0, 3, 1, 2)
        return numpy.ascontiguousarray(gxp[:, :, g.ph:g.ph + h, g.pw:g.pw + w])

    if _y_side(g, c, o, layout):
        # Stride 1: the data gradient is the convolution of gy with the flipped, transposed kernel.
        flipped = numpy.ascontiguousarray(W[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
        full = Geometry(g.kh, g.kw, 1, 1, g.kh - 1 - g.ph, g.kw - 1 - g.pw)
        with forced(layout='sample', side='x'):
            return conv_forward(gy, flipped, None, full)

    gx = numpy.empty((n, c, h, w), dtype=gy.dtype)
    wmt = W.reshape(o, k).T
    if g.is_pointwise:
        for s in range(n):
            numpy.matmul(wmt, gy[s].reshape(o, p), out=gx[s].reshape(c, p))
        return gx
    gcol = numpy.empty((k, p), dtype=gy.dtype)
    gxp = numpy.empty((c, hp, wp), dtype=gy.dtype)
    for s in range(n):
        numpy.matmul(wmt, gy[s].reshape(o, p), out=gcol)
        gxp[...] = 0
        _col2im_sample(gcol, gxp, g, ho, wo)
        gx[s] = gxp[:, g.ph:g.ph + h, g.pw:g.pw + w]
    return gx


def conv_backward_filter(x, gy, geometry):
    """gW (O, C, kh, kw) of a convolution of x (N, C, H, W), from gy (N, O, ho, wo)."""
    g = geometry
    n, c, h, w = x.shape
    o, ho, wo = gy.shape[1:]
    if g.out_size(h, w) != (ho, wo):
        raise ValueError('gradient size {} x {} does not match input {} x {} for {}'.format(
            ho, wo, h, w, g))
    p = ho * wo
    k = c * g.kh * g.kw
    layout = _layout(p)
    if layout == 'rows':
        col = _rows_col(x, g, ho, wo)
        return numpy.matmul(_to_rows(gy).T, col).reshape(o, c, g.kh, g.kw)

    if _y_side(g, c, o, layout):
        # gW[o, c, i, j] = sum_(hp, wp) T[(o, i, j), (hp, wp)] xp[c, hp, wp],
        # T[o, i, j, hp, wp] = gy[o, hp - i, wp - j]: gy expanded (O kh kw rows) instead of x.
        padded = _PaddedSample(x, g)
        hp, wp = h + 2 * g.ph, w + 2 * g.pw
        shifted = numpy.zeros((o, g.kh, g.kw, hp, wp), dtype=x.dtype)
        t2 = shifted.reshape(o * g.kh * g.kw, hp * wp)
        acc = numpy.zeros((o * g.kh * g.kw, c), dtype=x.dtype)
        part = numpy.empty_like(acc)
        for s in range(n):
            for i, j in g.taps:
                shifted[:, i, j, i:i + ho, j:j + wo] = gy[s]
            xp_n = numpy.ascontiguousarray(padded(x[s]))
            numpy.matmul(t2, xp_n.reshape(c, hp * wp).T, out=part)
            acc += part
        return numpy.ascontiguousarray(
            acc.reshape(o, g.kh, g.kw, c).transpose(0, 3, 1, 2))

    acc = numpy.zeros((o, k), dtype=x.dtype)
    part = numpy.empty_like(acc)
    for s, col_n in _sample_cols(x, g, ho, wo):
        numpy.matmul(gy[s].reshape(o, p), col_n.T, out=part)
        acc += part
    return acc.reshape(o, c, g.kh, g.kw)


# ------------------------------------------------------------------------------------------------
# FunctionNodes
# ------------------------------------------------------------------------------------------------

def _contiguous(a):
    return backend.get_array_module(a).ascontiguousarray(a)


#: The kernels of the CPU path (this module's functions above); the GPU path's are
#: common/bounded_convolution.py's functions of the same names.
CPU_KERNELS = collections.namedtuple(
    'Kernels', 'conv_forward conv_backward_data conv_backward_filter')(
        conv_forward, conv_backward_data, conv_backward_filter)


class _ConvolutionNode(function_node.FunctionNode):
    """What the convolution nodes share: stride and pad, the kernels, the geometry, the type checks.

    ``W_IN_AXIS`` / ``W_OUT_AXIS``: the axes of W that hold the input and output channels
    ((out, in, kh, kw) for convolution, (in, out, kh, kw) for deconvolution, as in Chainer).
    ``bounded``: compute with common/bounded_convolution.py's kernels (the GPU path), else with
    this module's CPU kernels; None: as the first input's array module and common/gpu_path.py's
    switch say at the first forward pass.  The nodes of the backward pass inherit it.
    """
    W_IN_AXIS, W_OUT_AXIS = 1, 0

    def __init__(self, stride=1, pad=0, bounded=None):
        (self.sy, self.sx), (self.ph, self.pw) = _pair(stride), _pair(pad)
        self.bounded = bounded

    @property
    def kernels(self):
        return bounded_convolution if self.bounded else CPU_KERNELS

    @property
    def options(self):
        """Stride, pad and kernels: what the nodes of the backward pass are built with."""
        return dict(stride=(self.sy, self.sx), pad=(self.ph, self.pw), bounded=self.bounded)

    def geometry(self, W_shape):
        return Geometry(W_shape[2], W_shape[3], self.sy, self.sx, self.ph, self.pw)

    def check_type_forward(self, in_types):
        n_in = in_types.size()
        type_check.expect(2 <= n_in, n_in <= 3)
        x_type, w_type = in_types[:2]
        type_check.expect(
            x_type.dtype.kind == 'f', w_type.dtype == x_type.dtype,
            x_type.ndim == 4, w_type.ndim == 4,
            x_type.shape[1] == w_type.shape[self.W_IN_AXIS])
        if type_check.eval(n_in) == 3:
            b_type = in_types[2]
            type_check.expect(b_type.dtype == x_type.dtype, b_type.ndim == 1,
                              b_type.shape[0] == w_type.shape[self.W_OUT_AXIS])

    def _retained_contiguous(self, inputs):
        """(x, W, b or None) of forward, x and W C-contiguous and kept for backward."""
        if self.bounded is None:
            self.bounded = gpu_path.takes_gpu_path(inputs[0])
        self.retain_inputs((0, 1))
        b = inputs[2] if len(inputs) == 3 else None
        return _contiguous(inputs[0]), _contiguous(inputs[1]), b


class Convolution2DFunction(_ConvolutionNode):
    """y = conv(x, W) + b; Chainer's convolution_2d with cover_all=False."""

    def forward(self, inputs):
        x, W, b = self._retained_contiguous(inputs)
        return self.kernels.conv_forward(x, W, b, self.geometry(W.shape)),

    def backward(self, indexes, grad_outputs):
        x, W = self.get_retained_inputs()
        gy, = grad_outputs
        ret = []
        if 0 in indexes:
            ret.append(Deconvolution2DFunction(outsize=x.shape[2:], **self.options)
                       .apply((gy, W))[0])
        if 1 in indexes:
            ret.append(Convolution2DGradW(ksize=W.shape[2:], **self.options).apply((x, gy))[0])
        if 2 in indexes:
            ret.append(F.sum(gy, axis=(0, 2, 3)))
        return ret


class Deconvolution2DFunction(_ConvolutionNode):
    """y = deconv(x, W) + b, W (in, out, kh, kw) as Chainer's deconvolution_2d."""
    W_IN_AXIS, W_OUT_AXIS = 0, 1

    def __init__(self, stride=1, pad=0, outsize=None, bounded=None):
        super().__init__(stride, pad, bounded)
        self.outsize = None if outsize is None or outsize[0] is None else _pair(outsize)

    def forward(self, inputs):
        x, W, b = self._retained_contiguous(inputs)
        g = self.geometry(W.shape)
        if self.outsize is None:
            self.outsize = g.deconv_out_size(*x.shape[2:])
        y = self.kernels.conv_backward_data(x, W, g, self.outsize)
        if b is not None:
            y += b[:, None, None]
        return y,

    def backward(self, indexes, grad_outputs):
        x, W = self.get_retained_inputs()
        gy, = grad_outputs
        ret = []
        if 0 in indexes:
            ret.append(Convolution2DFunction(**self.options).apply((gy, W))[0])
        if 1 in indexes:
            ret.append(Convolution2DGradW(ksize=W.shape[2:], **self.options).apply((gy, x))[0])
        if 2 in indexes:
            ret.append(F.sum(gy, axis=(0, 2, 3)))
        return ret


class Convolution2DGradW(_ConvolutionNode):
    """gW = d conv(x, W) / dW contracted with gy; inputs (x, gy)."""

    def __init__(self, stride, pad, ksize, bounded=None):
        super().__init__(stride, pad, bounded)
        self.kh, self.kw = _pair(ksize)

    def check_type_forward(self, in_types):
        type_check.expect(in_types.size() == 2)

    def forward(self, inputs):
        x, gy, _ = self._retained_contiguous(inputs)
        return self.kernels.conv_backward_filter(
            x, gy, self.geometry((None, None, self.kh, self.kw))),

    def backward(self, indexes, grad_outputs):
        x, gy = self.get_retained_inputs()
        ggW, = grad_outputs
        ret = []
        if 0 in indexes:
            ret.append(Deconvolution2DFunction(outsize=x.shape[2:], **self.options)
                       .apply((gy, ggW))[0])
        if 1 in indexes:
            ret.append(Convolution2DFunction(**self.options).apply((x, ggW))[0])
        return ret


# ------------------------------------------------------------------------------------------------
# Functions and links
# ------------------------------------------------------------------------------------------------

def enabled():
    """False inside ``chainer.using_config('use_fast_convolution', False)``."""
    return getattr(chainer.config, CONFIG_KEY, True)


def _path(x, W, b=None):
    """Which kernels compute this call: 'cpu' (this module's, NumPy arrays), 'bounded'
    (common/bounded_convolution.py's: CuPy arrays, and NumPy arrays under common/gpu_path.py's
    switch), or None (Chainer's stock functions).

    W may be an uninitialized Parameter (its array is None): a link initializes it first.
    """
    if not enabled():
        return None
    x, W, b = (None if a is None else chainer.as_array(a) for a in (x, W, b))
    if type(x) is numpy.ndarray:
        if intel64.is_ideep_available() and chainer.config.use_ideep != 'never':
            return None
        path = 'bounded' if gpu_path.enabled() else 'cpu'
    elif type(x) is cuda.ndarray:
        path = 'bounded'
    else:
        return None  # ChainerX, iDeep arrays, ...: the stock functions
    if x.dtype.type not in DTYPES or x.ndim != 4:
        return None
    for a, ndim in ((W, 4), (b, 1)):
        if a is not None and (type(a) is not type(x) or a.dtype != x.dtype or a.ndim != ndim):
            return None
    return path


def _applies(x, W, b=None):
    """True when this module computes the call (on either path)."""
    return _path(x, W, b) is not None


def _inputs(x, W, b):
    return (x, W) if b is None else (x, W, b)


def convolution_2d(x, W, b=None, stride=1, pad=0, **kwargs):
    """F.convolution_2d, computed by :class:`Convolution2DFunction` where it applies."""
    path = _path(x, W, b)
    fast = (path and not kwargs.get('cover_all', False)
            and _pair(kwargs.get('dilate', 1)) == (1, 1) and kwargs.get('groups', 1) == 1)
    if not fast:
        return F.convolution_2d(x, W, b, stride, pad, **kwargs)
    y, = Convolution2DFunction(stride, pad, bounded=path == 'bounded').apply(_inputs(x, W, b))
    return y


def _inverts_convolution(x, W, stride, pad, outsize):
    """True when x has the size of the convolution (cover_all=False) of an outsize input.

    Chainer also accepts an outsize whose convolution has x's size only with cover_all=True
    (the last window runs past the padded input); :class:`Deconvolution2DFunction` computes
    the adjoint of the cover_all=False convolution, so such calls go to the stock function.
    """
    if outsize is None or outsize[0] is None:
        return True
    geometry = Geometry.of(chainer.as_array(W).shape[2:], stride, pad)
    return geometry.out_size(*_pair(outsize)) == tuple(chainer.as_array(x).shape[2:])


def deconvolution_2d(x, W, b=None, stride=1, pad=0, outsize=None, **kwargs):
    """F.deconvolution_2d, computed by :class:`Deconvolution2DFunction` where it applies."""
    path = _path(x, W, b)
    fast = (path and _pair(kwargs.get('dilate', 1)) == (1, 1)
            and kwargs.get('groups', 1) == 1 and _inverts_convolution(x, W, stride, pad, outsize))
    if not fast:
        return F.deconvolution_2d(x, W, b, stride, pad, outsize, **kwargs)
    y, = Deconvolution2DFunction(stride, pad, outsize, bounded=path == 'bounded').apply(
        _inputs(x, W, b))
    return y


class Convolution2D(L.Convolution2D):
    """L.Convolution2D (same parameters) computed by :func:`convolution_2d`."""

    def forward(self, x):
        if (self.x_layout is not None or getattr(x, 'layout', None) is not None
                or self.dilate != (1, 1) or self.groups != 1 or not _applies(x, self.W, self.b)):
            return super().forward(x)
        if self.W.array is None:
            self._initialize_params(chainer.as_array(x).shape[1])
        return convolution_2d(x, self.W, self.b, self.stride, self.pad)


class Deconvolution2D(L.Deconvolution2D):
    """L.Deconvolution2D (same parameters) computed by :func:`deconvolution_2d`."""

    def forward(self, x):
        if self.dilate != (1, 1) or self.groups != 1 or not _applies(x, self.W, self.b):
            return super().forward(x)
        if self.W.array is None:
            self._initialize_params(chainer.as_array(x).shape[1])
        outsize = None if self.outsize is None or self.outsize[0] is None else self.outsize
        return deconvolution_2d(x, self.W, self.b, self.stride, self.pad, outsize)
