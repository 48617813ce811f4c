"""Activation and BatchNormalization in one CPU node, with the parameters of the stock link.

Every box of the AutoEncoders is "convolution, activation, BatchNormalization".  Chainer 7.8.1
computes the last two on NumPy arrays as separate single-threaded functions that each make
several full passes over the activations and allocate a temporary per step: LeakyReLU copies
its input and multiplies a boolean-masked selection (one pass for the copy, one for the mask,
one gathering and one scattering pass), BatchNormalization takes the mean and the variance in
separate passes (``x.var`` subtracts the mean into a temporary first), then writes ``x - mean``,
scales it, multiplies by gamma and adds beta, each a full pass with a new array, and its
backward recomputes ``x_hat`` the same way before three more.  On bc7db4a2 at minibatch 50
these are ~300 MB of activations per pass.

:class:`ActivationBatchNormalization` computes ``y = BN(activation(z))`` with as few passes as
the arithmetic allows, on blocks of a sample's channels small enough (``BLOCK_ELEMENTS``) that
all the steps on one block run in the core's cache, and with the blocks shared among
``thread_count()`` threads (NumPy releases the GIL inside its loops):

* forward, training: pass 1 applies the activation (in place on the convolution's output when
  the caller allows it, see ``overwrite``) and takes each block's per-channel mean and sum of
  squared deviations; the blocks' statistics are merged in float64 with Chan's formula, which
  is one-pass in memory and never subtracts the large, nearly equal sums that ``E[x^2] -
  E[x]^2`` would.  Pass 2 writes ``y = (h - mean) * gamma / std + beta``.  The running
  statistics are updated as Chainer does (``decay``, unbiased variance ``m / (m - 1)``).
* forward, test mode (``chainer.config.train`` False): activation and the fixed affine map of
  the running statistics in a single pass.
* backward, training: pass 1 sums ``gy`` and ``gy * x_hat`` per channel; pass 2 writes
  ``gz = gamma / std * (gy - (x_hat * ggamma + gbeta) / m)`` times the activation's derivative,
  which is taken from the retained activation output ``h`` (LeakyReLU: the sign of h; tanh:
  ``1 - h^2``), as Chainer's own activations do.  Test mode: one pass.

Higher-order gradients (``enable_double_backprop``) are rare and not worth a second set of
kernels: when they are requested, the backward pass rebuilds the same mathematics from stock
Chainer functions on the retained arrays and differentiates that, so gradients of any order
stay right.

:class:`BatchNormalization` subclasses ``L.BatchNormalization`` (same parameters gamma and beta,
same persistent values avg_mean, avg_var and N, so model.npz files load into either) and adds
:meth:`BatchNormalization.activate_and_normalize`.  The stock functions run wherever this module
does not apply: arrays that are not NumPy arrays (CuPy on GPU, ChainerX), inputs that are not
4-dimensional or are normalized over other axes than (0, 2, 3), dtypes other than
float32/float64 or differing from the parameters', a link without gamma or beta, fine-tuning,
iDeep, ``chainer.using_config('use_fast_normalization', False)``, and NumPy arrays under
:mod:`common.gpu_path`'s switch (which runs the GPU code path, Chainer's functions, on the CPU).
"""
import concurrent.futures
import os
import threading

import numpy

import common  # noqa: F401  (Chainer compatibility)
import chainer
import chainer.functions as F
import chainer.links as L
from chainer import function_node
from chainer.backends import intel64
from chainer.utils import type_check

from common import gpu_path

CONFIG_KEY = 'use_fast_normalization'  # chainer.config.use_fast_normalization: False -> stock
DTYPES = (numpy.float32, numpy.float64)

#: Elements of one block: 64 Ki float32 values are 256 KiB, so a block, the output block and
#: one temporary of the same size fit the 1-2 MiB L2 cache of a current x86 core.
BLOCK_ELEMENTS = 1 << 16

#: Activations this node computes itself, with the stock function each one replaces.
ACTIVATIONS = {
    'identity': None,
    'leaky_relu': F.leaky_relu,  # Chainer's default slope 0.2
    'tanh': F.tanh,
}
LEAKY_SLOPE = 0.2
assert 0 <= LEAKY_SLOPE <= 1  # _activate computes LeakyReLU as max(z, slope z)


def enabled():
    """False inside ``chainer.using_config('use_fast_normalization', False)``."""
    return getattr(chainer.config, CONFIG_KEY, True)


def thread_count():
    """Threads for the elementwise work: OMP_NUM_THREADS when set (the benchmark and BLAS read
    it too), otherwise the cores this process may run on."""
    value = os.environ.get('OMP_NUM_THREADS', '')
    if value.isdigit() and int(value) > 0:
        return int(value)
    return len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()


_pool = None
_pool_lock = threading.Lock()


def _executor():
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = concurrent.futures.ThreadPoolExecutor(
                max(1, thread_count() - 1), thread_name_prefix='fast_normalization')
        return _pool


def _run_blocks(function, blocks):
    """Call ``function(block)`` for every block, the blocks dealt out round-robin to
    ``thread_count()`` threads (the calling thread takes the first share).  Each block writes
    only its own slices, so the threads need no locks."""
    workers = min(thread_count(), len(blocks))
    if workers <= 1:
        for block in blocks:
            function(block)
        return

    def run(share):
        for block in share:
            function(block)

    shares = [blocks[i::workers] for i in range(workers)]
    futures = [_executor().submit(run, share) for share in shares[1:]]
    run(shares[0])
    for future in futures:
        future.result()


def _blocks(shape):
    """(sample, first channel, end channel) blocks of an (N, C, P) array, each about
    ``BLOCK_ELEMENTS`` elements and contiguous in memory."""
    n, c, p = shape
    step = max(1, min(c, BLOCK_ELEMENTS // max(p, 1)))
    return [(s, c0, min(c, c0 + step)) for s in range(n) for c0 in range(0, c, step)]


# ------------------------------------------------------------------------------------------------
# NumPy kernels on (N, C, P) views.  Per-channel vectors are (C, 1) so that they broadcast
# over a block's (channels, P) slice.
# ------------------------------------------------------------------------------------------------

def _activate(z, h, activation):
    """h = activation(z) for one block; h may be z itself (in place).

    LeakyReLU with a slope in [0, 1] is max(z, slope z): Chainer's ``z if z > 0 else slope z``
    value for value (zeros and their signs included), without the masked assignment, which
    NumPy runs element by element, 25 times slower than these two vectorized operations.
    """
    if activation == 'leaky_relu':
        scaled = numpy.multiply(z, z.dtype.type(LEAKY_SLOPE))
        numpy.maximum(z, scaled, out=h)
    elif activation == 'tanh':
        numpy.tanh(z, out=h)
    elif h is not z:
        numpy.copyto(h, z)


def _apply_derivative(gz, h, activation):
    """gz *= activation'(z), written in terms of the activation's output h (as Chainer's
    LeakyReLU and tanh do): LeakyReLU's factor is 1 where h > 0, else the slope."""
    if activation == 'leaky_relu':
        factor = numpy.greater(h, 0).astype(gz.dtype)
        factor *= gz.dtype.type(1 - LEAKY_SLOPE)
        factor += gz.dtype.type(LEAKY_SLOPE)
        gz *= factor
    elif activation == 'tanh':
        gz *= 1 - h * h


def _batch_statistics(z3, h3, activation):
    """Apply the activation (z3 -> h3, possibly the same array) and return the per-channel mean
    and biased variance of h3 over (N, P), in float64, from one pass over memory."""
    n, c, p = h3.shape
    block_mean = numpy.empty((n, c), dtype=h3.dtype)
    block_m2 = numpy.empty((n, c), dtype=h3.dtype)

    def block_statistics(block):
        s, c0, c1 = block
        h = h3[s, c0:c1]
        _activate(z3[s, c0:c1], h, activation)
        mean = h.mean(axis=1, keepdims=True)  # pairwise summation along the contiguous axis
        deviation = h - mean
        deviation *= deviation
        block_mean[s, c0:c1] = mean[:, 0]
        block_m2[s, c0:c1] = deviation.sum(axis=1)

    _run_blocks(block_statistics, _blocks(h3.shape))
    # Chan et al.: merge the N per-sample (mean, M2) pairs of p values each.
    mean = block_mean.mean(axis=0, dtype=numpy.float64)
    spread = block_mean - mean
    m2 = block_m2.sum(axis=0, dtype=numpy.float64) + p * numpy.einsum('nc,nc->c', spread, spread)
    return mean, m2 / (n * p)


def _affine(h3, y3, mean, scale, beta, z3=None, activation='identity'):
    """y3 = (h3 - mean) * scale + beta per channel; with z3, first h3 = activation(z3)."""
    def block_affine(block):
        s, c0, c1 = block
        h, y = h3[s, c0:c1], y3[s, c0:c1]
        if z3 is not None:
            _activate(z3[s, c0:c1], h, activation)
        numpy.subtract(h, mean[c0:c1], out=y)
        y *= scale[c0:c1]
        y += beta[c0:c1]

    _run_blocks(block_affine, _blocks(h3.shape))


def _gradient_sums(gy3, h3, mean, inv_std):
    """Per-channel sum(gy) and sum(gy * x_hat), x_hat = (h - mean) * inv_std, in float64."""
    n, c, _ = gy3.shape
    parts = numpy.empty((2, n, c), dtype=gy3.dtype)

    def block_sums(block):
        s, c0, c1 = block
        gy = gy3[s, c0:c1]
        x_hat = h3[s, c0:c1] - mean[c0:c1]
        x_hat *= inv_std[c0:c1]
        parts[0, s, c0:c1] = gy.sum(axis=1)
        x_hat *= gy
        parts[1, s, c0:c1] = x_hat.sum(axis=1)

    _run_blocks(block_sums, _blocks(gy3.shape))
    gbeta, ggamma = parts.sum(axis=1, dtype=numpy.float64)
    return gbeta, ggamma


def _input_gradient(gy3, h3, gz3, activation, scale, mean=None, slope=None, offset=None):
    """gz3 = (gy - ((h - mean) * slope + offset)) * scale, times the activation's derivative;
    without mean: gz3 = gy * scale times the derivative (fixed statistics)."""
    def block_gradient(block):
        s, c0, c1 = block
        gz, h = gz3[s, c0:c1], h3[s, c0:c1]
        if mean is None:
            numpy.multiply(gy3[s, c0:c1], scale[c0:c1], out=gz)
        else:
            numpy.subtract(h, mean[c0:c1], out=gz)
            gz *= slope[c0:c1]
            gz += offset[c0:c1]
            numpy.subtract(gy3[s, c0:c1], gz, out=gz)
            gz *= scale[c0:c1]
        _apply_derivative(gz, h, activation)

    _run_blocks(block_gradient, _blocks(gy3.shape))


# ------------------------------------------------------------------------------------------------
# FunctionNode
# ------------------------------------------------------------------------------------------------

def _as_3d(a):
    """(N, C, H, W) -> (N, C, H W) view of a C-contiguous array."""
    return a.reshape(a.shape[0], a.shape[1], -1)


def _column(v, dtype):
    return numpy.ascontiguousarray(v, dtype=dtype).reshape(-1, 1)


class ActivationBatchNormalization(function_node.FunctionNode):
    """y = batch_normalization(activation(z), gamma, beta) on NumPy arrays; inputs (z, gamma,
    beta).

    With ``mean`` and ``var`` (test mode) the normalization uses them, as
    F.fixed_batch_normalization; otherwise the batch statistics, as F.batch_normalization, and
    ``running_mean`` / ``running_var`` (if given) are updated in place with ``decay``.
    ``overwrite``: z's array may be overwritten with activation(z) (only for 'leaky_relu' and
    only when nothing else reads z, as in a Block, where z is the convolution's fresh output).
    """

    def __init__(self, activation='identity', eps=2e-5, mean=None, var=None,
                 running_mean=None, running_var=None, decay=0.9, overwrite=False):
        if activation not in ACTIVATIONS:
            raise ValueError('activation must be one of {}'.format(sorted(ACTIVATIONS)))
        self.activation = activation
        self.eps = eps
        self.fixed = mean is not None
        self.fixed_mean, self.fixed_var = mean, var
        self.running_mean, self.running_var, self.decay = running_mean, running_var, decay
        # In place only where the activation is piecewise linear: then the higher-order fallback
        # can rebuild the activation's graph from its output alone (see _stock_graph).
        self.overwrite = overwrite and activation == 'leaky_relu'

    def check_type_forward(self, in_types):
        type_check._argname(in_types, ('z', 'gamma', 'beta'))
        z_type, gamma_type, beta_type = in_types
        type_check.expect(
            z_type.dtype.kind == 'f', z_type.ndim == 4,
            gamma_type.dtype == z_type.dtype, beta_type.dtype == z_type.dtype,
            gamma_type.ndim == 1, beta_type.shape == gamma_type.shape,
            z_type.shape[1] == gamma_type.shape[0])

    def forward_cpu(self, inputs):
        self.retain_inputs((0, 1, 2))
        z, gamma, beta = inputs
        z = numpy.ascontiguousarray(z)
        dtype = z.dtype
        if self.activation == 'identity':
            h = z
        elif self.overwrite and z is inputs[0]:
            h = z
        else:
            h = numpy.empty_like(z)
        self.h = h
        y = numpy.empty_like(z)
        z3, h3, y3 = _as_3d(z), _as_3d(h), _as_3d(y)
        if self.fixed:
            mean, var = self.fixed_mean, self.fixed_var
        else:
            mean, var = _batch_statistics(z3, h3, self.activation)
            if self.running_mean is not None:
                m = z.size // gamma.size
                adjust = m / max(m - 1., 1.)  # unbiased variance, as Chainer
                self.running_mean *= self.decay
                self.running_mean += (1 - self.decay) * mean
                self.running_var *= self.decay
                self.running_var += (1 - self.decay) * adjust * var
        inv_std = 1 / numpy.sqrt(numpy.asarray(var, dtype=numpy.float64) + self.eps)
        self.mean = _column(mean, dtype)
        self.inv_std = _column(inv_std, dtype)
        scale = _column(gamma * inv_std, dtype)
        _affine(h3, y3, self.mean, scale, _column(beta, dtype),
                z3=z3 if self.fixed else None, activation=self.activation)
        return y,

    def backward(self, indexes, grad_outputs):
        z, gamma, beta = self.get_retained_inputs()
        gy, = grad_outputs
        if chainer.config.enable_backprop:  # higher-order gradients: differentiate stock graph
            y = self._stock_graph(z, gamma, beta)
            grads = chainer.grad([y], [z, gamma, beta], [gy], enable_double_backprop=True)
            return tuple(grads[i] for i in indexes)

        gy = numpy.ascontiguousarray(gy.array)
        dtype = gy.dtype
        gy3, h3 = _as_3d(gy), _as_3d(self.h)
        gbeta, ggamma = _gradient_sums(gy3, h3, self.mean, self.inv_std)
        gamma_array = gamma.array.astype(numpy.float64)
        scale = _column(gamma_array * self.inv_std[:, 0], dtype)
        gz = None
        if 0 in indexes:
            gz = numpy.empty_like(gy)
            if self.fixed:
                _input_gradient(gy3, h3, _as_3d(gz), self.activation, scale)
            else:
                m = gy.size // gy.shape[1]
                _input_gradient(gy3, h3, _as_3d(gz), self.activation, scale, mean=self.mean,
                                slope=_column(self.inv_std[:, 0] * ggamma / m, dtype),
                                offset=_column(gbeta / m, dtype))
        grads = {0: gz, 1: ggamma.astype(dtype), 2: gbeta.astype(dtype)}
        return tuple(chainer.Variable(grads[i]) for i in indexes)

    def _stock_graph(self, z, gamma, beta):
        """y as a graph of stock Chainer functions of the retained (z, gamma, beta), equal in
        value and in every derivative to this node (for higher-order gradients)."""
        if self.activation == 'leaky_relu':
            # z's array may hold h now (overwrite).  LeakyReLU is linear on each side of 0, so
            # h = z * factor + (h - z * factor) with constant factor and offset has its value
            # and all its derivatives.
            factor = numpy.where(self.h > 0, 1, LEAKY_SLOPE).astype(self.h.dtype)
            h = z * factor + (self.h - z.array * factor)
        elif self.activation == 'tanh':
            h = F.tanh(z)
        else:
            h = z
        if self.fixed:
            return F.fixed_batch_normalization(h, gamma, beta, self.fixed_mean, self.fixed_var,
                                               eps=self.eps)
        return F.batch_normalization(h, gamma, beta, eps=self.eps)


# ------------------------------------------------------------------------------------------------
# Function and link
# ------------------------------------------------------------------------------------------------

def _applies(z, gamma, beta):
    """True when this module computes the call: NumPy float arrays of matching dtype, 4-D input,
    fast path enabled, no iDeep."""
    if not enabled() or gpu_path.enabled():
        return False
    arrays = [None if a is None else chainer.as_array(a) for a in (z, gamma, beta)]
    if any(type(a) is not numpy.ndarray for a in arrays):
        return False  # CuPy, ChainerX, a missing gamma or beta: the stock functions
    z, gamma, beta = arrays
    if z.dtype.type not in DTYPES or z.ndim != 4 or gamma.ndim != 1:
        return False
    if gamma.dtype != z.dtype or beta.dtype != z.dtype:
        return False
    if intel64.is_ideep_available() and chainer.config.use_ideep != 'never':
        return False
    return True


class BatchNormalization(L.BatchNormalization):
    """L.BatchNormalization (same parameters and persistent values) computed, on CPU, by
    :class:`ActivationBatchNormalization`, which can also apply the activation before it."""

    def forward(self, x, **kwargs):
        return self.activate_and_normalize(x, 'identity', **kwargs)

    def activate_and_normalize(self, z, activation, overwrite=False, finetune=False):
        """BN(activation(z)), the stock ``self(ACTIVATIONS[activation](z))``.

        ``overwrite``: z is a fresh array nobody else reads (a convolution's output inside a
        Block): a LeakyReLU may then write its output into z's array.
        """
        fast = (not finetune and self.axis in (None, (0, 2, 3))
                and not chainer.config.in_recomputing
                and _applies(z, self.gamma, self.beta))
        if not fast:
            stock = ACTIVATIONS[activation]
            h = z if stock is None else stock(z)
            return super().forward(h, finetune=finetune)
        if chainer.config.train:
            node = ActivationBatchNormalization(
                activation, self.eps, running_mean=self.avg_mean, running_var=self.avg_var,
                decay=self.decay, overwrite=overwrite)
        else:
            node = ActivationBatchNormalization(
                activation, self.eps, mean=self.avg_mean, var=self.avg_var, overwrite=overwrite)
        y, = node.apply((z, self.gamma, self.beta))
        return y
