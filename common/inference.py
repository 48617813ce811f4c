"""Running a trained AutoEncoder on spectrograms of any length.

A whole utterance's (T, 256) spectrogram is cut into consecutive blocks of FRAMES (32)
frames, the last one padded with the floor value (silence), passed through the network in
minibatches, and joined again, so phase reconstruction sees one continuous spectrogram.
"""
import numpy

import common  # noqa: F401
import chainer

from common import spectrogram as sp

SILENCE = -numpy.log(sp.FLOOR)  # a bin at the floor: ln 1000


def to_blocks(spectrogram):
    """(T, 256) -> (ceil(T / 32), 1, 32, 256) float32, the last block padded with silence."""
    s = numpy.asarray(spectrogram, dtype=numpy.float32).reshape(-1, sp.BINS)
    n_blocks = -(-s.shape[0] // sp.FRAMES)
    padded = numpy.full((n_blocks * sp.FRAMES, sp.BINS), SILENCE, dtype=numpy.float32)
    padded[:s.shape[0]] = s
    return padded.reshape(n_blocks, 1, sp.FRAMES, sp.BINS)


def from_blocks(blocks, frames):
    """(N, 1, 32, 256) -> (frames, 256): the inverse of :func:`to_blocks`."""
    return numpy.asarray(blocks).reshape(-1, sp.BINS)[:frames]


def _batched(function, blocks, device, batchsize):
    outputs = []
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        for start in range(0, len(blocks), batchsize):
            x = device.send(blocks[start:start + batchsize])
            outputs.append(chainer.backends.cuda.to_cpu(function(x).array))
    return numpy.concatenate(outputs)


def autoencode(model, spectrogram, device=None, batchsize=16):
    """The network's reconstruction of a (T, 256) or (N, 1, 32, 256) spectrogram, same shape."""
    device = device or chainer.get_device('@numpy')
    s = numpy.asarray(spectrogram, dtype=numpy.float32)
    if s.ndim == 4:
        return _batched(model, s, device, batchsize)
    s = s.reshape(-1, sp.BINS)
    return from_blocks(_batched(model, to_blocks(s), device, batchsize), s.shape[0])


def encode(model, spectrogram, device=None, batchsize=16):
    """Latent variables of a (T, 256) spectrogram: (blocks, *latent shape)."""
    device = device or chainer.get_device('@numpy')
    return _batched(model.encode, to_blocks(spectrogram), device, batchsize)


def decode(model, latents, frames, device=None, batchsize=16):
    """(blocks, *latent shape) -> the (frames, 256) spectrogram they decode to."""
    device = device or chainer.get_device('@numpy')
    latents = numpy.asarray(latents, dtype=numpy.float32)
    return from_blocks(_batched(model.decode, latents, device, batchsize), frames)
