"""A recording's latent sequence, saved and turned back into audio: ``python -m common.latent``.

    python -m common.latent encode results/<id> IN OUT.npz [--gpu N]
    python -m common.latent decode results/<id> IN.npz OUT.wav [--gpu N]
                                   [--griffin-lim-iterations N]

encode prepares the recording as :mod:`common.reconstruct` does (16 kHz mono, min-max scaled as a
whole, (T, 256) spectrogram, consecutive 32-frame blocks, the last padded with silence) and saves
each block's latent variable (the encoder's output; 4096 x 16 x 1 for bc7db4a2, in (-1, 1)).
decode runs the decoder on them, joins the blocks, cuts the padding off, and renders the wave by
fast Griffin-Lim, zero-padded to the recording's sample count.  Griffin-Lim is deterministic, so
``encode`` then ``decode`` gives the same wave as ``python -m common.reconstruct``.

This is the entry point of the research line's next step: edit ``latents`` in the .npz (e.g.
for voice conversion), keep everything else, and decode.

The .npz (numpy.savez, no pickles) holds:

=================  =================================================================
``latents``        float32 (blocks, *latent shape): (blocks, 4096, 16, 1) for bc7db4a2
``frames``         int64: spectrogram frames T; blocks = ceil(T / 32)
``samples``        int64: the recording's length at 16 kHz (the decoded wave's length)
``sample_rate``    int64: 16000
``experiment``     str: the experiment id of the run (e.g. ``bc7db4a2``)
``net``            str: the run's net (``bc7db4a2/net.py:Net``)
``latent_shape``   int64: the latent shape of one block, as in summary.json
``format``         int64: FORMAT (1)
``source``         str: the encoded file's name (information only)
=================  =================================================================

decode refuses (one line ``python -m common.latent: error: ...``, exit status 2) a file that is
not such an .npz, latents of another experiment or net than the results folder's, latents whose
shape does not match the run's latent shape, a block count that does not match ``frames``, and
non-finite values.
"""
import argparse
import os
import sys
import zipfile

import numpy

import common  # noqa: F401
from common import files, inference
from common import reconstruct as tools
from common import spectrogram as sp

FORMAT = 1
PROG = 'python -m common.latent'
KEYS = ('latents', 'frames', 'samples', 'sample_rate', 'experiment', 'net', 'latent_shape',
        'format')


def latent_shape(model, summary, device=None):
    """One block's latent shape: summary.json's ``latent_shape``, else the net's encoder output."""
    if summary.get('latent_shape'):
        return tuple(int(n) for n in summary['latent_shape'])
    zeros = numpy.zeros((1, 1, sp.FRAMES, sp.BINS), dtype=numpy.float32)
    return tuple(inference.encode(model, zeros[0, 0], device).shape[1:])


def encode(model, summary, wave, device=None, source=''):
    """A scaled 16 kHz recording -> the dict that :func:`save` writes."""
    spectrogram = tools.recording_spectrogram(wave)
    latents = inference.encode(model, spectrogram, device)
    return {
        'latents': latents.astype(numpy.float32, copy=False),
        'frames': numpy.int64(len(spectrogram)),
        'samples': numpy.int64(len(wave)),
        'sample_rate': numpy.int64(sp.SAMPLE_RATE),
        'experiment': numpy.array(str(summary['experiment'])),
        'net': numpy.array(str(summary['net'])),
        'latent_shape': numpy.array(latent_shape(model, summary, device), dtype=numpy.int64),
        'format': numpy.int64(FORMAT),
        'source': numpy.array(str(source)),
    }


def save(path, content):
    """numpy.savez to `path` atomically (a temporary file in its folder, then renamed)."""
    try:
        with files.atomic_write(path) as stream:
            numpy.savez(stream, **content)
    except OSError as error:
        raise tools.ToolError('cannot write %s (%s)' % (path, error.strerror or error))


def load(path):
    """The content of a latent .npz as a dict of arrays; ToolError when it is not one."""
    try:
        with open(path, 'rb') as stream:
            magic = stream.read(4)
    except OSError as error:
        raise tools.ToolError('%s: cannot open (%s)' % (path, error.strerror or error))
    if magic == b'\x93NUM':
        raise tools.ToolError('%s: not a latent file (a single array, not the .npz of '
                              'common.latent encode)' % path)
    if magic[:2] != b'PK':
        raise tools.ToolError('%s: not a latent file (not an .npz archive of common.latent '
                              'encode)' % path)
    try:
        stored = numpy.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise tools.ToolError('%s: not readable as a latent .npz (%s)'
                              % (path, ' '.join(str(error).split()) or type(error).__name__))
    if not isinstance(stored, numpy.lib.npyio.NpzFile):
        raise tools.ToolError('%s: not a latent file (a single array, not the .npz of '
                              'common.latent encode)' % path)
    try:
        with stored:
            missing = [key for key in KEYS if key not in stored.files]
            if missing:
                raise tools.ToolError('%s: not a latent file of common.latent encode (no %s)'
                                      % (path, ', '.join(missing)))
            return {key: stored[key] for key in stored.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        raise tools.ToolError('%s: not readable as a latent .npz (%s)'
                              % (path, ' '.join(str(error).split()) or type(error).__name__))


def _integer(content, key, path):
    value = numpy.asarray(content[key])
    if value.shape != () or not numpy.issubdtype(value.dtype, numpy.integer):
        raise tools.ToolError('%s: %s must be one integer, got %s of shape %s'
                              % (path, key, value.dtype, value.shape))
    return int(value)


def check(content, summary, expected_shape, path):
    """ToolError unless the latent file fits the results folder's run; returns (latents, frames,
    samples)."""
    experiment, net = str(content['experiment']), str(content['net'])
    if _integer(content, 'format', path) != FORMAT:
        raise tools.ToolError('%s: latent file format %s, this version reads %d'
                              % (path, content['format'], FORMAT))
    if experiment != summary['experiment'] or net != summary['net']:
        raise tools.ToolError('%s: latents of experiment %s (%s), but the results folder is a run '
                              'of %s (%s)' % (path, experiment, net, summary['experiment'],
                                              summary['net']))
    latents = numpy.asarray(content['latents'])
    if latents.ndim != 1 + len(expected_shape) or latents.shape[1:] != tuple(expected_shape):
        raise tools.ToolError('%s: latents of shape %s; %s needs (blocks, %s)'
                              % (path, latents.shape, summary['experiment'],
                                 ', '.join(str(n) for n in expected_shape)))
    if not numpy.issubdtype(latents.dtype, numpy.floating):
        raise tools.ToolError('%s: latents are %s, not floating point' % (path, latents.dtype))
    if not numpy.isfinite(latents).all():
        raise tools.ToolError('%s: latents have NaN or Inf values' % path)
    frames, samples = _integer(content, 'frames', path), _integer(content, 'samples', path)
    blocks = -(-frames // sp.FRAMES)
    if frames < 1 or len(latents) != blocks:
        raise tools.ToolError('%s: %d latent blocks for %d frames (needs %d blocks of %d frames)'
                              % (path, len(latents), frames, blocks, sp.FRAMES))
    if _integer(content, 'sample_rate', path) != sp.SAMPLE_RATE or sp.n_frames(samples) != frames:
        raise tools.ToolError('%s: %d samples at %s Hz do not make %d frames'
                              % (path, samples, content['sample_rate'], frames))
    return latents.astype(numpy.float32), frames, samples


def decode(model, latents, frames, samples, device=None,
           griffin_lim_iterations=tools.GRIFFIN_LIM_ITERATIONS):
    """Latents -> the (frames, 256) spectrogram -> Griffin-Lim wave of `samples` samples."""
    spectrogram = inference.decode(model, latents, frames, device)
    return tools.render(spectrogram, samples, griffin_lim_iterations)


def _encode(args):
    tools.check_folder(args.results)
    tools.check_output(args.output)
    wave = tools.load_recording(args.input)
    device = tools.get_device(args.gpu)
    model, summary = tools.load_model(args.results, device)
    content = encode(model, summary, wave, device, os.path.basename(args.input))
    save(args.output, content)
    print('%s: %d frames -> latents %s of %s -> %s'
          % (args.input, int(content['frames']), content['latents'].shape,
             summary['experiment'], args.output))


def _decode(args):
    summary = tools.check_folder(args.results)
    tools.check_output(args.output)
    content = load(args.input)
    shape = summary.get('latent_shape')
    if shape:  # check against summary.json before the (slow) model load
        check(content, summary, tuple(shape), args.input)
    device = tools.get_device(args.gpu)
    model, summary = tools.load_model(args.results, device)
    latents, frames, samples = check(content, summary, latent_shape(model, summary, device),
                                     args.input)
    wave = decode(model, latents, frames, samples, device, args.griffin_lim_iterations)
    tools.save_wave(args.output, wave)
    print('%s: latents %s of %s -> %d samples (%.2f s) -> %s'
          % (args.input, latents.shape, summary['experiment'], samples,
             samples / sp.SAMPLE_RATE, args.output))


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog=PROG, description='Encode a recording into the latent sequence of a trained '
        'AutoEncoder, or decode a latent sequence into audio.')
    commands = parser.add_subparsers(dest='command', metavar='{encode,decode}')
    commands.required = True
    encoder = commands.add_parser('encode', help='recording -> latents .npz')
    encoder.add_argument('results', help='results folder of a finished run')
    encoder.add_argument('input', help='recording (WAV, FLAC, OGG; any rate, any length)')
    encoder.add_argument('output', help='latent file to write (.npz)')
    encoder.add_argument('--gpu', '-g', type=int, default=-1, help='GPU id (-1: CPU, default)')
    decoder = commands.add_parser('decode', help='latents .npz -> WAV')
    decoder.add_argument('results', help='results folder of the run that encoded the latents')
    decoder.add_argument('input', help='latent file (.npz of encode)')
    decoder.add_argument('output', help='output WAV (16 kHz, 16-bit)')
    tools.add_common_arguments(decoder)
    args = parser.parse_args(argv)
    if args.command == 'decode' and args.griffin_lim_iterations < 0:
        parser.error('--griffin-lim-iterations must be >= 0')
    return tools.run_tool(PROG, _encode if args.command == 'encode' else _decode, args)


if __name__ == '__main__':
    sys.exit(main())
