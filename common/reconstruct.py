"""A whole recording through a trained AutoEncoder: ``python -m common.reconstruct``.

    python -m common.reconstruct results/<id> IN OUT.wav [--gpu N] [--griffin-lim-iterations N]

IN is a recording as :func:`common.audio.load` reads it for every tool (a format of
:data:`common.audio.EXTENSIONS`, up to :data:`common.audio.MAX_SECONDS`), resampled to 16 kHz
mono.
The recording is min-max scaled as a whole into [-1, 1] (SPEC.md step 2, as the training
previews do), turned into its (T, 256) spectrogram (T = 1 + (L - 1024) // 512 frames), cut into
consecutive blocks of 32 frames (the last one padded with silence), passed through the network,
and the blocks' outputs are joined into one (T, 256) spectrogram *before* phase reconstruction,
so block edges do not click.  Fast Griffin-Lim (deterministic: fixed initial phase) makes the
wave; the samples after the last whole frame (fewer than one hop, 512) are zeros, so OUT.wav
(16-bit PCM, 16 kHz) has exactly as many samples as IN at 16 kHz.

The results folder is all it needs: its summary.json names the experiment's net, model.npz holds
the weights.  Errors (no model, a model that does not fit the net, a recording that is too short
or silent, an unreadable file) are one line, ``python -m common.reconstruct: error: ...``, and
exit status 2.

This module also holds what the other model tools (:mod:`common.latent`, :mod:`common.evaluate`)
share: :class:`ToolError`, :func:`load_recording`, :func:`get_device`, :func:`run_tool`.
"""
import argparse
import os
import sys

import numpy

import common  # noqa: F401  (Chainer compatibility before chainer is imported)

from common import audio, cli, inference, runs
from common import spectrogram as sp

PROG = 'python -m common.reconstruct'
GRIFFIN_LIM_ITERATIONS = 100  # as the training previews
SILENT_PEAK = 1e-4  # -80 dBFS: a recording whose samples never reach this is silent (16-bit: 3 LSB)


class ToolError(Exception):
    """A bad input of a model tool: the one-line message after 'prog: error: '."""


def load_recording(path):
    """A recording for the model tools: float32 16 kHz mono, min-max scaled as a whole.

    Raises ToolError when the file cannot be read (:class:`common.audio.AudioError`'s reason),
    is shorter than one frame (1024 samples at 16 kHz), or is silent (constant, or never louder
    than -80 dBFS).
    """
    try:
        wave = audio.load(path)
    except audio.AudioError as error:
        raise ToolError(str(error))
    if len(wave) < sp.FRAME_LENGTH:
        raise ToolError('%s: too short: %d samples at 16 kHz (%.1f ms); a spectrogram frame needs '
                        '%d' % (path, len(wave), len(wave) / sp.SAMPLE_RATE * 1000,
                                sp.FRAME_LENGTH))
    peak = float(numpy.abs(wave).max())
    if peak < SILENT_PEAK:
        raise ToolError('%s: silent (peak %.1f dBFS, below %.0f dBFS)'
                        % (path, 20 * numpy.log10(max(peak, 1e-12)), 20 * numpy.log10(SILENT_PEAK)))
    scaled, _ = sp.normalize_batch(wave[None])
    return scaled[0]


def recording_spectrogram(wave):
    """(T, 256) spectrogram of a scaled recording (SPEC steps 3-6 on the whole of it)."""
    return sp.utterance_to_spectrogram(wave, scale=False)[0]


#: The device of --gpu: a GPU that cannot be used is one line naming why (common.cli.get_device).
get_device = cli.get_device


def check_folder(folder):
    """The run's summary, read before the (slow) model load, so a wrong folder fails first."""
    try:
        return runs.load_summary(os.fspath(folder))
    except runs.RunError as error:
        raise ToolError(str(error))


def load_model(folder, device):
    """(net on device, summary) of a finished run; ToolError for a bad folder or model."""
    try:
        return runs.load_model(os.fspath(folder), device)
    except runs.RunError as error:
        raise ToolError(str(error))


def to_length(wave, samples):
    """The wave cut or zero-padded to `samples` samples (float32)."""
    out = numpy.zeros(int(samples), dtype=numpy.float32)
    count = min(len(wave), int(samples))
    out[:count] = wave[:count]
    return out


def check_output(path):
    """ToolError when `path` cannot be written to (checked before the slow work)."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ToolError('cannot write %s: no folder %s' % (path, folder))
    if os.path.isdir(path):
        raise ToolError('cannot write %s: it is a folder' % path)


def save_wave(path, wave):
    """audio.save with a ToolError for an unwritable path; returns the gain applied (dB)."""
    try:
        return audio.save(path, wave)
    except (OSError, ValueError) as error:
        raise ToolError('cannot write %s (%s)' % (path, getattr(error, 'strerror', None)
                                                  or ' '.join(str(error).split())))


def check_finite(spectrogram):
    """ToolError when the network's output has NaN or Inf values (a diverged model)."""
    if not numpy.isfinite(spectrogram).all():
        raise ToolError('the model\'s output spectrogram has NaN or Inf values (a diverged run?)')
    return spectrogram


def render(spectrogram, samples, griffin_lim_iterations=GRIFFIN_LIM_ITERATIONS):
    """Griffin-Lim wave of a (T, 256) spectrogram, zero-padded to `samples` samples."""
    check_finite(spectrogram)
    return to_length(sp.to_wave(spectrogram, n_iter=griffin_lim_iterations), samples)


def reconstruct(model, wave, device=None, griffin_lim_iterations=GRIFFIN_LIM_ITERATIONS):
    """A scaled 16 kHz recording through the AutoEncoder: the output wave, same length."""
    output = inference.autoencode(model, recording_spectrogram(wave), device)
    return render(output, len(wave), griffin_lim_iterations)


def add_common_arguments(parser):
    parser.add_argument('--gpu', '-g', type=int, default=-1, help='GPU id (-1: CPU, default)')
    parser.add_argument('--griffin-lim-iterations', type=int, default=GRIFFIN_LIM_ITERATIONS,
                        metavar='N', help='fast Griffin-Lim iterations (default %(default)s)')


def run_tool(prog, function, args):
    """function(args) with bad inputs reported as one line 'prog: error: ...', exit status 2.

    Bad inputs are ToolError, and cli.UsageError from :func:`get_device` (an unusable --gpu)."""
    try:
        function(args)
    except (ToolError, cli.UsageError) as error:
        print('%s: error: %s' % (prog, ' '.join(str(error).split())), file=sys.stderr)
        return 2
    return 0


def _main(args):
    check_folder(args.results)
    check_output(args.output)
    wave = load_recording(args.input)
    device = get_device(args.gpu)
    model, summary = load_model(args.results, device)
    output = reconstruct(model, wave, device, args.griffin_lim_iterations)
    gain = save_wave(args.output, output)
    print('%s: %d samples (%.2f s, %d frames) through %s -> %s%s'
          % (args.input, len(wave), len(wave) / sp.SAMPLE_RATE, sp.n_frames(len(wave)),
             summary['experiment'], args.output, audio.describe_gain(gain)))


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog=PROG, description='A whole recording through a trained AutoEncoder (Griffin-Lim).')
    parser.add_argument('results', help='results folder of a finished run (summary.json, '
                        'model.npz)')
    parser.add_argument('input', help='recording (%s; any rate, up to %s)'
                        % (audio.RULE, audio.duration_text(audio.MAX_SECONDS)))
    parser.add_argument('output', help='output WAV (16 kHz, 16-bit)')
    add_common_arguments(parser)
    args = parser.parse_args(argv)
    if args.griffin_lim_iterations < 0:
        parser.error('--griffin-lim-iterations must be >= 0')
    return run_tool(PROG, _main, args)


if __name__ == '__main__':
    sys.exit(main())
