"""A recording's latent sequence, saved and turned back into audio: ``python -m common.latent``.

    python -m common.latent encode results/<id> IN OUT.npz [--gpu N]
    python -m common.latent decode results/<id> IN.npz OUT.wav [--gpu N]
                                   [--griffin-lim-iterations N]
    python -m common.latent analyze results/<id> [--dataset DIR] [--gpu N] [--max-files N]
                                    [--truncation-points N] [--speaker-level N]

analyze measures how much of the latent the model uses (:mod:`common.latent_analysis`).

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
non-finite values or values beyond float32.  A latent file may come from elsewhere, so it is
read as data (no pickle) and its entries' declared sizes are checked before anything is read:
at most an hour of audio (:data:`MAX_SECONDS`; encode refuses longer recordings, so whatever
encode writes, decode reads) and :data:`MAX_LATENT_BYTES` of latents.
"""
import argparse
import math
import os
import sys

import numpy

import common  # noqa: F401
from common import audio, files, inference, npz
from common import reconstruct as tools
from common import spectrogram as sp

FORMAT = 1
PROG = 'python -m common.latent'
KEYS = ('latents', 'frames', 'samples', 'sample_rate', 'experiment', 'net', 'latent_shape',
        'format')
TEXTS = ('experiment', 'net', 'source')
#: The longest recording a latent file holds: encode refuses longer ones, decode larger files.
#: The longest recording any tool reads (common.audio): an hour, 3516 blocks, 0.9 GiB of
#: float32 latents for bc7db4a2, 1.9 GiB for c9335bce.
MAX_SECONDS = audio.MAX_SECONDS
#: The most bytes the latents entry may declare (c9335bce's hour in float32 fits).
MAX_LATENT_BYTES = 2 ** 31
MAX_TEXT_BYTES = 4 * 4096  # 4096 characters (numpy stores 4 bytes per character)


def latent_shape(model, device=None):
    """One block's latent shape: the shape of the net's encoder output (not summary.json's,
    which comes with the results folder and is only used to check a file before the model
    loads)."""
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
        'latent_shape': numpy.array(latent_shape(model, device), dtype=numpy.int64),
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


def max_blocks(seconds=MAX_SECONDS):
    """Latent blocks of a recording of ``seconds`` at 16 kHz (3516 for an hour)."""
    return -(-sp.n_frames(int(seconds * sp.SAMPLE_RATE)) // sp.FRAMES)


def load(path):
    """The content of a latent .npz as a dict of arrays; ToolError when it is not one.

    Read as data (:class:`common.npz.Archive`: no pickle), and every entry's declared shape and
    dtype are checked before its data is read, so a small file that declares an enormous array
    is refused instead of filling the memory: ``latents`` must be floating point with at most
    :func:`max_blocks` blocks (an hour) and :data:`MAX_LATENT_BYTES`; the numbers must be
    single integers, the texts short strings.
    """
    try:
        with npz.Archive(path, 'latent file') as archive:
            missing = [key for key in KEYS if key not in archive]
            if missing:
                raise tools.ToolError('%s: not a latent file of common.latent encode (no %s)'
                                      % (path, ', '.join(missing)))
            keys = [key for key in KEYS + ('source',) if key in archive]
            for key in keys:
                _check_header(archive.header(key), path)
            return {key: archive.read(key) for key in keys}
    except npz.NpzError as error:
        raise tools.ToolError(str(error))


def _check_header(header, path):
    """ToolError unless an entry's declared shape and dtype are what encode writes, within the
    limits (before anything of it is read)."""
    key, kind = header.key, header.dtype.kind
    if key == 'latents':
        if kind != 'f' or len(header.shape) < 2:
            raise tools.ToolError('%s: latents are %s; common.latent encode writes floating '
                                  'point (blocks, *latent shape)' % (path, header.describe()))
        if header.shape[0] > max_blocks() or header.nbytes > MAX_LATENT_BYTES:
            raise tools.ToolError(
                '%s: latents of shape %s (%d bytes): more than %s of audio or %d bytes, the most '
                'a latent file may hold' % (path, header.shape, header.nbytes,
                                            _duration(MAX_SECONDS), MAX_LATENT_BYTES))
    elif key == 'latent_shape':
        if kind not in 'iu' or len(header.shape) != 1 or header.shape[0] > 8:
            raise tools.ToolError('%s: latent_shape is %s, not a few integers'
                                  % (path, header.describe()))
    elif key in TEXTS:
        if kind != 'U' or header.shape != () or header.nbytes > MAX_TEXT_BYTES:
            raise tools.ToolError('%s: %s is %s, not a short string'
                                  % (path, key, header.describe()))
    elif header.shape != () or kind not in 'iu':
        raise tools.ToolError('%s: %s must be one integer, got %s of shape %s'
                              % (path, key, header.dtype, header.shape))


def _duration(seconds):
    for unit, scale in (('h', 3600), ('min', 60), ('s', 1)):
        if seconds >= scale or unit == 's':
            return '%.3g %s' % (seconds / scale, unit)


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
    if latents.size:  # their extremes, not a copy (latents may be large); NaN propagates
        low, high = float(latents.min()), float(latents.max())
        if not (math.isfinite(low) and math.isfinite(high)):
            raise tools.ToolError('%s: latents have NaN or Inf values' % path)
        largest, limit = max(-low, high), float(numpy.finfo(numpy.float32).max)
        if largest > limit:
            raise tools.ToolError('%s: latents reach %g, beyond the range of float32 (%g), in '
                                  'which the network computes' % (path, largest, limit))
    frames, samples = _integer(content, 'frames', path), _integer(content, 'samples', path)
    blocks = -(-frames // sp.FRAMES)
    if frames < 1 or len(latents) != blocks:
        raise tools.ToolError('%s: %d latent blocks for %d frames (needs %d blocks of %d frames)'
                              % (path, len(latents), frames, blocks, sp.FRAMES))
    if _integer(content, 'sample_rate', path) != sp.SAMPLE_RATE or sp.n_frames(samples) != frames:
        raise tools.ToolError('%s: %d samples at %s Hz do not make %d frames'
                              % (path, samples, content['sample_rate'], frames))
    return latents.astype(numpy.float32, copy=False), frames, samples


def decode(model, latents, frames, samples, device=None,
           griffin_lim_iterations=tools.GRIFFIN_LIM_ITERATIONS):
    """Latents -> the (frames, 256) spectrogram -> Griffin-Lim wave of `samples` samples."""
    spectrogram = inference.decode(model, latents, frames, device)
    return tools.render(spectrogram, samples, griffin_lim_iterations)


def _encode(args):
    tools.check_folder(args.results)
    tools.check_output(args.output)
    wave = tools.load_recording(args.input)
    if len(wave) > MAX_SECONDS * sp.SAMPLE_RATE:
        raise tools.ToolError('%s: %s of audio; a latent file holds at most %s (cut the '
                              'recording)' % (args.input, _duration(len(wave) / sp.SAMPLE_RATE),
                                              _duration(MAX_SECONDS)))
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
    latents, frames, samples = check(content, summary, latent_shape(model, device), args.input)
    wave = decode(model, latents, frames, samples, device, args.griffin_lim_iterations)
    gain = tools.save_wave(args.output, wave)
    print('%s: latents %s of %s -> %d samples (%.2f s) -> %s%s'
          % (args.input, latents.shape, summary['experiment'], samples,
             samples / sp.SAMPLE_RATE, args.output, audio.describe_gain(gain)))


def main(argv=None):
    from common import latent_analysis  # it imports this module
    parser = argparse.ArgumentParser(
        prog=PROG, description='Encode a recording into the latent sequence of a trained '
        'AutoEncoder, or decode a latent sequence into audio.')
    commands = parser.add_subparsers(dest='command', metavar='{encode,decode,analyze}')
    commands.required = True
    encoder = commands.add_parser('encode', help='recording -> latents .npz')
    encoder.add_argument('results', help='results folder of a finished run')
    encoder.add_argument('input', help='recording (%s; any rate, up to %s)'
                         % (audio.RULE, _duration(MAX_SECONDS)))
    encoder.add_argument('output', help='latent file to write (.npz)')
    encoder.add_argument('--gpu', '-g', type=int, default=-1, help='GPU id (-1: CPU, default)')
    decoder = commands.add_parser('decode', help='latents .npz -> WAV')
    decoder.add_argument('results', help='results folder of the run that encoded the latents')
    decoder.add_argument('input', help='latent file (.npz of encode)')
    decoder.add_argument('output', help='output WAV (16 kHz, 16-bit)')
    tools.add_common_arguments(decoder)
    analyzer = commands.add_parser(
        'analyze', help='how much of the latent is used (common/latent_analysis.py)',
        description='Activity, PCA spectrum, rate-distortion by truncation and a speaker probe '
        'of the latent on the run\'s validation utterances; writes latent_analysis.json and '
        'latent_analysis.png into the results folder.')
    analyzer.add_argument('results', help='results folder of a finished run')
    analyzer.add_argument('--dataset', '-d', default=None, metavar='DIR',
                          help='corpus folder (default: the run\'s, from summary.json)')
    analyzer.add_argument('--gpu', '-g', type=int, default=-1, help='GPU id (-1: CPU, default)')
    analyzer.add_argument('--max-files', type=int, default=None, metavar='N',
                          help='analyse only the first N validation files')
    analyzer.add_argument('--truncation-points', type=int,
                          default=latent_analysis.TRUNCATION_POINTS, metavar='N',
                          help='points k of the truncation curve (default %(default)s; each '
                          'decodes every utterance once)')
    analyzer.add_argument('--speaker-level', type=int, default=1, metavar='N',
                          help='the folder N levels below the corpus folder names the speaker '
                          '(default %(default)s: <corpus>/<speaker>/...; 0: no speaker folders, '
                          'no probe)')
    args = parser.parse_args(argv)
    if args.command == 'decode' and args.griffin_lim_iterations < 0:
        parser.error('--griffin-lim-iterations must be >= 0')
    if args.command == 'analyze':
        for flag, value, least in (('--max-files', args.max_files, 1),
                                   ('--truncation-points', args.truncation_points, 2),
                                   ('--speaker-level', args.speaker_level, 0)):
            if value is not None and value < least:
                parser.error('%s must be at least %d' % (flag, least))
        return tools.run_tool(PROG, latent_analysis.main, args)
    return tools.run_tool(PROG, _encode if args.command == 'encode' else _decode, args)


if __name__ == '__main__':
    sys.exit(main())
