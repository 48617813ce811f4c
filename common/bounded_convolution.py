"""Convolution kernels whose temporaries stay within a fixed budget: the GPU path, for CuPy arrays.

CuPy 14 has no cuDNN, so Chainer 7.8.1 convolves on a GPU with im2col and ``tensordot``: the
im2col array of the whole minibatch, then the copy that ``tensordot`` makes of it.  For dec1 of
bc7db4a2 (32 channels to 1, 7x7, stride 1) that is 2450 + 2450 MiB at minibatch 50 (issue 19),
more than the record's 3017 MiB card.  The kernels here compute the same products with every
temporary of a step bounded by :data:`CHUNK_BYTES`:

* **Chunks of the minibatch.**  A step takes as many samples as fit in the budget, builds their
  im2col matrix (C kh kw, samples x positions) from one strided view of the padded chunk (one
  copy), and multiplies it by the weight matrix in one 2-D GEMM; the result goes into the
  chunk's slice of the (N, O, h, w) output.  The data gradient is the GEMM with the transposed
  weight followed by col2im (kh kw strided additions, or one transposing copy where the kernel
  tiles the input, as enc7's 1x8 does); the filter gradient sums the chunks' GEMMs.
* **The output side for dec1** (stride 1, fewer output than input channels): as on the CPU
  (common/fast_convolution.py), the GEMM runs on the padded input itself and the kh kw shifted
  partial products are summed on the one-channel output side; its data gradient is the stride-1
  convolution of ``gy`` with the flipped kernel, its filter gradient expands ``gy``.

Only 2-D matrix products and copies, written once with ``xp`` (NumPy or CuPy): the CPU runs the
very code the GPU runs under :mod:`common.gpu_path`'s switch.  The FunctionNodes, links and
parameters are those of :mod:`common.fast_convolution`, which calls these kernels for CuPy arrays.
Geometry objects are :class:`common.fast_convolution.Geometry` (kernel, stride, padding).
"""
import contextlib

import numpy

from chainer import backend

#: Largest size of the temporaries of one step (one chunk of the minibatch), in bytes.  A GEMM on
#: 64 MiB operands keeps a GPU busy; at bc7db4a2's minibatch 50 a chunk holds 9-11 samples in enc2
#: and dec2, 20-24 in enc1 and dec1, 28-36 in enc3-5 and dec3-5, the whole minibatch elsewhere.
CHUNK_BYTES = 64 * 2 ** 20

_FORCE = {'chunk': None, 'side': None}


@contextlib.contextmanager
def override(store, **values):
    """Set entries of ``store`` (a module's ``_FORCE``) for the block, then restore them: how
    tests reach every code path of a convolution module on small shapes."""
    unknown = set(values) - set(store)
    if unknown:
        raise TypeError('nothing to force named {}'.format(', '.join(sorted(unknown))))
    previous = dict(store)
    store.update(values)
    try:
        yield
    finally:
        store.update(previous)


def forced(chunk=None, side=None):
    """Force the samples per chunk and the side ('x' or 'y', where 'y' applies); for tests."""
    return override(_FORCE, chunk=chunk, side=side)


def _chunks(n, sample_bytes):
    """(start, stop) of the chunks of a minibatch of n samples, ``sample_bytes`` per sample."""
    step = _FORCE['chunk'] or CHUNK_BYTES // max(sample_bytes, 1)
    step = max(1, min(n, step))
    return [(start, min(n, start + step)) for start in range(0, n, step)]


def _as_strided(xp, a, shape, strides):
    if xp is numpy:
        return numpy.lib.stride_tricks.as_strided(a, shape, strides, writeable=False)
    from cupy.lib import stride_tricks
    return stride_tricks.as_strided(a, shape, strides)


def _padded_sizes(g, h, w):
    return h + 2 * g.ph, w + 2 * g.pw


def _y_side(g, c, o, h, w, ho, wo):
    """Expand the output side: stride 1, a padding the flipped kernel can undo, and fewer values
    to expand (O channels of the padded size) than on the input side (C channels of the output
    size): dec1's 1 x 38 x 262 against 32 x 32 x 256."""
    if g.sy != 1 or g.sx != 1 or g.ph > g.kh - 1 or g.pw > g.kw - 1:
        return False
    if _FORCE['side']:
        return _FORCE['side'] == 'y'
    hp, wp = _padded_sizes(g, h, w)
    return o * hp * wp < c * ho * wo


def check_out_size(ho, wo):
    """ValueError for a convolution whose output would have no position."""
    if ho < 1 or wo < 1:
        raise ValueError('convolution output would be empty ({} x {})'.format(ho, wo))


def _padded(xp, x, g, channels_first=False):
    """Zero-padded copy of a chunk x (n, C, H, W): (n, C, Hp, Wp), or (C, n, Hp, Wp)."""
    n, c, h, w = x.shape
    hp, wp = _padded_sizes(g, h, w)
    if channels_first:
        x = x.transpose(1, 0, 2, 3)
        n, c = c, n
    if g.ph == 0 and g.pw == 0:
        return xp.ascontiguousarray(x)
    out = xp.zeros((n, c, hp, wp), dtype=x.dtype)
    out[:, :, g.ph:g.ph + h, g.pw:g.pw + w] = x
    return out


def _col(xp, x, g, ho, wo):
    """im2col of a chunk x (n, C, H, W) as a (C kh kw, n ho wo) matrix: one copy of a view."""
    n, c = x.shape[:2]
    padded = _padded(xp, x, g)
    sn, sc, sh, sw = padded.strides
    view = _as_strided(xp, padded, (c, g.kh, g.kw, n, ho, wo),
                       (sc, sh, sw, sn, sh * g.sy, sw * g.sx))
    return xp.ascontiguousarray(view).reshape(c * g.kh * g.kw, n * ho * wo)


def _channels_first(xp, a):
    """A chunk (n, C, h, w) as a contiguous (C, n h w) matrix."""
    n, c, h, w = a.shape
    return xp.ascontiguousarray(a.transpose(1, 0, 2, 3)).reshape(c, n * h * w)


def _col2im(xp, gcol, g, n, c, h, w, ho, wo):
    """The (n, C, h, w) sum of a (C kh kw, n ho wo) column matrix back at its windows."""
    g6 = gcol.reshape(c, g.kh, g.kw, n, ho, wo)
    if g.tiles(h, w, ho, wo):  # each input value in exactly one window: one transposing copy
        return g6.transpose(3, 0, 4, 1, 5, 2).reshape(n, c, h, w)
    hp, wp = _padded_sizes(g, h, w)
    gx = xp.zeros((n, c, hp, wp), dtype=gcol.dtype)
    for i, j in g.taps:
        gx[:, :, i:i + g.sy * ho:g.sy, j:j + g.sx * wo:g.sx] += g6[:, i, j].transpose(1, 0, 2, 3)
    return gx[:, :, g.ph:g.ph + h, g.pw:g.pw + w]


def conv_forward(x, W, b, geometry):
    """y = convolution of x (N, C, H, W) with W (O, C, kh, kw), plus b (O,) if given."""
    xp = backend.get_array_module(x)
    g = geometry
    n, c, h, w = x.shape
    o = W.shape[0]
    ho, wo = g.out_size(h, w)
    check_out_size(ho, wo)
    hp, wp = _padded_sizes(g, h, w)
    size = x.dtype.itemsize
    y = xp.empty((n, o, ho, wo), dtype=x.dtype)
    if _y_side(g, c, o, h, w, ho, wo):
        # z[(o, i, j), (s, hp, wp)] = sum_c W[o, c, i, j] xp[s, c, hp, wp];
        # y[s, o, h, w] = sum_(i, j) z[(o, i, j), (s, h + i, w + j)].
        wt = W.transpose(0, 2, 3, 1).reshape(o * g.kh * g.kw, c)
        for start, stop in _chunks(n, size * (c + o * g.kh * g.kw) * hp * wp):
            padded = _padded(xp, x[start:stop], g, channels_first=True)
            z = (wt @ padded.reshape(c, -1)).reshape(o, g.kh, g.kw, stop - start, hp, wp)
            out = y[start:stop].transpose(1, 0, 2, 3)
            for t, (i, j) in enumerate(g.taps):
                if t == 0:
                    out[...] = z[:, i, j, :, i:i + ho, j:j + wo]
                else:
                    out += z[:, i, j, :, i:i + ho, j:j + wo]
            del padded, z  # before the next chunk's are made
    else:
        k = c * g.kh * g.kw
        wm = W.reshape(o, k)
        for start, stop in _chunks(n, size * (c * hp * wp + (k + o) * ho * wo)):
            col = _col(xp, x[start:stop], g, ho, wo)
            y[start:stop].transpose(1, 0, 2, 3)[...] = (wm @ col).reshape(o, -1, ho, wo)
            del col
    if b is not None:
        y += b.reshape(1, o, 1, 1)
    return y


def conv_backward_data(gy, W, geometry, out_hw):
    """gx (N, C, H, W) of a convolution with W (O, C, kh, kw), from gy (N, O, ho, wo); also the
    forward pass of a deconvolution of gy with W (Chainer's deconvolution W is (in, out, kh, kw),
    this conv view's (O, C, kh, kw))."""
    xp = backend.get_array_module(gy)
    g = geometry
    n, o, ho, wo = gy.shape
    c = W.shape[1]
    h, w = out_hw
    if g.out_size(h, w) != (ho, wo):
        raise ValueError('output size {} x {} does not match input {} x {} for {}'.format(
            h, w, ho, wo, g))
    if _y_side(g, c, o, h, w, ho, wo):
        # Stride 1: the convolution of gy with the flipped kernel, in and out channels swapped.
        flipped = xp.ascontiguousarray(W[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
        full = g._replace(ph=g.kh - 1 - g.ph, pw=g.kw - 1 - g.pw)
        with forced(chunk=_FORCE['chunk'], side='x'):
            return conv_forward(gy, flipped, None, full)
    k = c * g.kh * g.kw
    hp, wp = _padded_sizes(g, h, w)
    wmt = W.reshape(o, k).T
    gx = xp.empty((n, c, h, w), dtype=gy.dtype)
    for start, stop in _chunks(n, gy.dtype.itemsize * ((o + k) * ho * wo + 2 * c * hp * wp)):
        gcol = wmt @ _channels_first(xp, gy[start:stop])
        gx[start:stop] = _col2im(xp, gcol, g, stop - start, c, h, w, ho, wo)
        del gcol
    return gx


def conv_backward_filter(x, gy, geometry):
    """gW (O, C, kh, kw) of a convolution of x (N, C, H, W), from gy (N, O, ho, wo)."""
    xp = backend.get_array_module(x)
    g = geometry
    n, c, h, w = x.shape
    o, ho, wo = gy.shape[1:]
    if g.out_size(h, w) != (ho, wo):
        raise ValueError('gradient size {} x {} does not match input {} x {} for {}'.format(
            ho, wo, h, w, g))
    hp, wp = _padded_sizes(g, h, w)
    size = x.dtype.itemsize
    if _y_side(g, c, o, h, w, ho, wo):
        # gW[o, c, i, j] = sum_(s, hp, wp) T[(o, i, j), (s, hp, wp)] xp[c, s, hp, wp],
        # T[o, i, j, s, hp, wp] = gy[s, o, hp - i, wp - j]: gy expanded (O kh kw rows), not x.
        acc = xp.zeros((o * g.kh * g.kw, c), dtype=x.dtype)
        for start, stop in _chunks(n, size * (c + o * g.kh * g.kw) * hp * wp):
            padded = _padded(xp, x[start:stop], g, channels_first=True)
            shifted = xp.zeros((o, g.kh, g.kw, stop - start, hp, wp), dtype=x.dtype)
            gyt = gy[start:stop].transpose(1, 0, 2, 3)
            for i, j in g.taps:
                shifted[:, i, j, :, i:i + ho, j:j + wo] = gyt
            acc += shifted.reshape(o * g.kh * g.kw, -1) @ padded.reshape(c, -1).T
            del padded, shifted, gyt
        return xp.ascontiguousarray(acc.reshape(o, g.kh, g.kw, c).transpose(0, 3, 1, 2))
    k = c * g.kh * g.kw
    acc = xp.zeros((o, k), dtype=x.dtype)
    for start, stop in _chunks(n, size * (c * hp * wp + (k + o) * ho * wo)):
        acc += _channels_first(xp, gy[start:stop]) @ _col(xp, x[start:stop], g, ho, wo).T
    return acc.reshape(o, c, g.kh, g.kw)
