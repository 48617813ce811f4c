"""Objective quality of a trained AutoEncoder on its validation utterances.

    python -m common.evaluate results/<id> [--dataset DIR] [--gpu N] [--max-files N]

The validation split is recreated as training made it: ``load_corpus(dataset, seed=<the run's
seed>)`` (dataset: the run's, from summary.json, unless --dataset names another folder).  Each
validation file is used whole: min-max scaled as a whole into [-1, 1] (SPEC.md step 2, as the
training previews do) and turned into its (T, 256) spectrogram S; the AutoEncoder reconstructs
S block by block (32 frames, the last padded, joined again: :mod:`common.inference`).  Files
longer than SEGMENT_FRAMES frames (51 s) are measured in segments with margins, so memory does
not grow with their length, with a progress line per segment (:func:`evaluate_utterance` says
what is exact and what is not).

The reference of the MCD is S rendered with the recording's own STFT phase (S is band-limited
to 0-4000 Hz, its quiet bins raised to the floor, and so is every rendering), and three
renderings are measured, all (T - 1) * 512 + 1024 samples long:

- ``griffin_lim_input``: fast Griffin-Lim (100 iterations) of S, what phase reconstruction
  alone loses (the floor of every Griffin-Lim rendering);
- ``autoencoder_griffin_lim``: Griffin-Lim of the AutoEncoder's output, what a listener hears;
- ``autoencoder_true_phase``: the AutoEncoder's output with the recording's own phase, what the
  network alone loses.

For each (:mod:`common.metrics` states the conventions):

- ``mcd_db``: mel-cepstral distortion against the reference, WORLD (harvest F0 of the
  recording, cheaptrick) at 8000 Hz, mel-cepstrum order 24, alpha 0.312, c_0 and the frames
  more than 30 dB below the recording's loudest left out, frame-aligned (no time warping).  It is
  analysed at 8 kHz because the spectrogram keeps 0-4000 Hz only; every wave here is
  band-limited to that.
- ``lsd_db``: log-spectral distance between S and the spectrogram of the wave, in dB.
- ``spectral_convergence``: of the wave against S's magnitudes (bins 1..256, both clipped at the
  floor).

And for the network's output spectrogram itself: ``spectrogram_mse`` (the training loss, here on
whole utterances) and ``spectrogram_lsd_db``.  Each number is computed per utterance and averaged
over utterances (each counts once).  evaluation.json in the results folder holds them (numbers
only, read by :mod:`common.report` and :mod:`common.compare`) with ``files`` (utterances
evaluated), ``validation_files`` (in the split), ``seconds`` (of audio) and
``griffin_lim_iterations``; a table is printed.
"""
import argparse
import json
import math
import os
import sys

import numpy

import common  # noqa: F401
from common import dataset, files, inference, metrics
from common import reconstruct as tools
from common import spectrogram as sp

PROG = 'python -m common.evaluate'
FILENAME = 'evaluation.json'
MCD_SAMPLE_RATE = 8000  # the spectrogram's band, 0-4000 Hz (SPEC.md step 5)
F0_METHOD = 'harvest'
RENDERINGS = (
    # key, table label
    ('griffin_lim_input', 'input, Griffin-Lim'),
    ('autoencoder_griffin_lim', 'AutoEncoder output, Griffin-Lim'),
    ('autoencoder_true_phase', 'AutoEncoder output, true phase'),
)
MEASURES = ('mcd_db', 'lsd_db', 'spectral_convergence')
#: Long utterances are measured in segments of SEGMENT_FRAMES frames (51.2 s), each with
#: MARGIN_FRAMES (5.12 s, more than Griffin-Lim's 100 iterations reach: one frame each) of
#: context on either side.  Both are multiples of ALIGN = 160 frames, the least multiple of the
#: network's 32-frame blocks that starts on a WORLD frame (5 ms = 40 samples at 8 kHz; a
#: spectrogram frame is 256 samples there).
SEGMENT_FRAMES = 1600
MARGIN_FRAMES = 160
ALIGN = 160
WORLD_HOP = int(metrics.FRAME_PERIOD_MS * sp.SAMPLE_RATE / 1000)  # 80 samples at 16 kHz


def segments(frames, segment_frames=None, margin_frames=None):
    """(context start, start, stop, context stop) frame indices of the segments that cover
    ``range(frames)``: each segment's frames [start, stop) are measured on its context [context
    start, context stop), up to ``margin_frames`` more on each side (defaults: SEGMENT_FRAMES,
    MARGIN_FRAMES)."""
    segment_frames = segment_frames or SEGMENT_FRAMES
    margin_frames = MARGIN_FRAMES if margin_frames is None else margin_frames
    for size in (segment_frames, margin_frames):
        if size % ALIGN:
            raise ValueError('segments and margins are multiples of %d frames, got %d'
                             % (ALIGN, size))
    for start in range(0, frames, segment_frames):
        stop = min(start + segment_frames, frames)
        yield max(0, start - margin_frames), start, stop, min(frames, stop + margin_frames)


class _Sums:
    """The per-utterance numbers, accumulated segment by segment: per-frame values where the
    measure is a mean over frames (LSD, MCD with the loudest frame of the whole utterance), and
    sums of squares where it is a ratio of norms (spectral convergence)."""

    def __init__(self):
        self.frames = 0
        self.squared_error = 0.0
        self.lsd = []
        self.power = []  # WORLD frame power of the recording, for the silent-frame rule
        self.renderings = {key: {'lsd': [], 'mcd': [], 'sc_error': 0.0}
                           for key, _ in RENDERINGS}
        self.target_energy = 0.0

    def result(self):
        speech = speech_mask(self.power)
        result = {
            'frames': self.frames,
            'spectrogram_mse': self.squared_error / (self.frames * sp.BINS),
            'spectrogram_lsd_db': float(numpy.mean(numpy.concatenate(self.lsd))),
        }
        for key, sums in self.renderings.items():
            result[key] = {
                'mcd_db': float(numpy.mean(numpy.concatenate(sums['mcd'])[speech])),
                'lsd_db': float(numpy.mean(numpy.concatenate(sums['lsd']))),
                'spectral_convergence': math.sqrt(sums['sc_error'] / self.target_energy),
            }
        return result


def evaluate_utterance(model, wave, device=None,
                       griffin_lim_iterations=tools.GRIFFIN_LIM_ITERATIONS, f0_method=F0_METHOD,
                       segment_frames=None, margin_frames=None, progress=None):
    """The numbers of one 16 kHz utterance (raw, any scale): a flat dict of floats.

    The utterance is scaled as a whole, then measured in segments of ``segment_frames`` frames
    (:func:`segments`), each on its context of ``margin_frames`` more frames on either side, so
    memory stays that of one segment whatever the utterance's length (a 30-minute file once
    needed more than 24 GB).  The spectrogram, the network's output (32-frame blocks aligned as
    in the whole utterance), the true-phase waves and the WORLD frames (5 ms, aligned: ALIGN)
    of a segment's frames are exactly those of the whole utterance; the numbers are combined
    exactly (per-frame means, sums of squares, the silent-frame rule on the loudest frame of the
    whole utterance).  What may differ in a long utterance: Griffin-Lim starts each context from
    its own random phase, and harvest's F0 sees the context only (the margins keep both away
    from the segment's edges).  An utterance of at most ``segment_frames`` frames is one segment:
    the same numbers as measuring it whole.  ``progress(seconds done, seconds)``, if given, is
    called after each segment.
    """
    scaled = sp.normalize_batch(numpy.asarray(wave, dtype=numpy.float32)[None])[0][0]
    frames = sp.n_frames(len(scaled))
    sums = _Sums()
    for context_start, start, stop, context_stop in segments(frames, segment_frames,
                                                             margin_frames):
        offset = context_start * sp.HOP_LENGTH
        piece = scaled[offset:offset + sp.wave_length(context_stop - context_start)]
        _measure(model, piece, start - context_start, stop - context_start,
                 last=stop == frames, sums=sums, device=device,
                 griffin_lim_iterations=griffin_lim_iterations, f0_method=f0_method)
        if progress is not None:
            progress(sp.wave_length(stop) / sp.SAMPLE_RATE, sp.wave_length(frames) / sp.SAMPLE_RATE)
    return sums.result()


def segment_reference(piece, spectrogram, phase, start, stop, last, f0_method=F0_METHOD):
    """The MCD reference of frames [start, stop) of a context ``piece`` (scaled wave; its
    spectrogram and STFT phase): (:class:`common.metrics.MelCepstrumReference` of the input
    with its true phase, every frame kept; the slice of its WORLD frames that are the
    segment's; their power in dB, for :func:`speech_mask` on the whole utterance).  ``last``:
    the segment ends the utterance."""
    # WORLD frames (5 ms) of the segment: 6.4 per spectrogram frame; the last segment's run on
    # to the end of the wave, as the whole utterance's do.
    world = slice(start * sp.HOP_LENGTH // WORLD_HOP, None if last
                  else stop * sp.HOP_LENGTH // WORLD_HOP)
    reference = metrics.MelCepstrumReference(
        sp.to_wave(spectrogram, phase=phase), sp.SAMPLE_RATE, f0_method=f0_method,
        analysis_rate=MCD_SAMPLE_RATE, analysis_wave=piece, silence_db=numpy.inf)
    analysis = metrics.resample(numpy.asarray(piece, dtype=numpy.float64), sp.SAMPLE_RATE,
                                MCD_SAMPLE_RATE)  # as MelCepstrumReference analyses it
    power = metrics.frame_power_db(metrics.spectral_envelope(
        analysis, MCD_SAMPLE_RATE, reference.f0, reference.times))[world]
    return reference, world, power


def speech_mask(powers):
    """The WORLD frames of a whole utterance that the MCD keeps, from its segments' frame
    powers (:func:`segment_reference`): metrics.speech_frames' rule, on the loudest frame of
    the whole utterance."""
    power = numpy.concatenate(powers)
    return power >= power.max() - metrics.SILENCE_DB


def _measure(model, piece, start, stop, last, sums, device, griffin_lim_iterations, f0_method):
    """Add frames [start, stop) of a context ``piece`` (its whole frames: the wave covered by
    them) to ``sums``; ``last``: the segment ends the utterance."""
    spectrogram = tools.recording_spectrogram(piece)
    phase = sp.stft(piece)
    output = tools.check_finite(inference.autoencode(model, spectrogram, device))
    inside = slice(start, stop)
    target = spectrogram[inside]
    count = stop - start
    sums.frames += count
    sums.squared_error += metrics.spectrogram_mse(target, output[inside]) * count * sp.BINS
    sums.lsd.append(metrics.frame_log_spectral_distances(target, output[inside]))
    # ||M||^2 of spectral convergence: the target's magnitudes (zero outside bins 1..256)
    energy = float(numpy.sum(sp.spectrogram_to_magnitude(target).astype(numpy.float64) ** 2))
    sums.target_energy += energy
    reference, world, power = segment_reference(piece, spectrogram, phase, start, stop, last,
                                                f0_method)
    sums.power.append(power)
    waves = {
        'griffin_lim_input': sp.to_wave(spectrogram, n_iter=griffin_lim_iterations),
        'autoencoder_griffin_lim': sp.to_wave(output, n_iter=griffin_lim_iterations),
        'autoencoder_true_phase': sp.to_wave(output, phase=phase),
    }
    first, length = start * sp.HOP_LENGTH, sp.wave_length(count)
    for key, wave in waves.items():
        rendered = tools.recording_spectrogram(wave)[inside]
        sums.renderings[key]['lsd'].append(metrics.frame_log_spectral_distances(target, rendered))
        sums.renderings[key]['mcd'].append(reference.frame_distortions(wave)[world])
        convergence = metrics.spectral_convergence(target, wave[first:first + length])
        sums.renderings[key]['sc_error'] += convergence ** 2 * energy


def average(results):
    """Mean over utterances of each number of :func:`evaluate_utterance`'s dicts."""
    summary = {}
    for key, value in results[0].items():
        if isinstance(value, dict):
            summary[key] = average([result[key] for result in results])
        elif key != 'frames':
            summary[key] = float(numpy.mean([result[key] for result in results]))
    return summary


def run_dataset(folder, summary, dataset_path=None):
    """The corpus folder of a run: ``dataset_path`` if given, else summary.json's (ToolError
    when it names none or it is not there)."""
    if dataset_path is None:
        dataset_path = (summary.get('dataset') or {}).get('path')
        if not dataset_path:
            raise tools.ToolError('%s: summary.json names no dataset; give --dataset' % folder)
        if not os.path.isdir(dataset_path):
            raise tools.ToolError('%s: the run\'s dataset %s is not there; give --dataset DIR'
                                  % (folder, dataset_path))
    return dataset_path


def validation_corpus(summary, dataset_path, log=print):
    """The corpus split as the run's training split it: load_corpus with the run's seed."""
    seed = int((summary.get('hyperparameters') or {}).get('seed', 0))
    try:
        return dataset.load_corpus(dataset_path, seed=seed, log=log)
    except dataset.CorpusError as error:
        raise tools.ToolError(str(error))


def evaluate(folder, dataset_path=None, gpu=-1, max_files=None,
             griffin_lim_iterations=tools.GRIFFIN_LIM_ITERATIONS, f0_method=F0_METHOD, log=print):
    """Evaluate a finished run on its validation utterances; writes and returns evaluation.json."""
    summary = tools.check_folder(folder)
    dataset_path = run_dataset(folder, summary, dataset_path)
    device = tools.get_device(gpu)
    model, summary = tools.load_model(folder, device)  # before a corpus that may take long
    corpus = validation_corpus(summary, dataset_path, log)
    files = list(zip(corpus.validation_files, corpus.validation_waves))
    if max_files is not None:
        files = files[:max_files]
    results = []
    for index, (path, wave) in enumerate(files):
        name = '[%d/%d] %s' % (index + 1, len(files), os.path.relpath(path, dataset_path))

        def progress(done, seconds):  # long files: a line per segment
            if done < seconds:
                log('%s: %.0f of %.0f s measured' % (name, done, seconds))

        result = evaluate_utterance(model, wave, device, griffin_lim_iterations, f0_method,
                                    progress=progress)
        results.append(result)
        log('%s: %d frames, MCD %.2f dB (AutoEncoder, Griffin-Lim), %.2f dB (Griffin-Lim alone)'
            % (name, result['frames'], result['autoencoder_griffin_lim']['mcd_db'],
               result['griffin_lim_input']['mcd_db']))
    evaluation = {
        'files': len(results),
        'validation_files': len(corpus.validation_files),
        'seconds': round(sum(sp.wave_length(result['frames']) for result in results)
                         / sp.SAMPLE_RATE, 3),
        'griffin_lim_iterations': griffin_lim_iterations,
    }
    evaluation.update(average(results))
    _check_finite(evaluation)
    write(os.path.join(folder, FILENAME), evaluation)
    return evaluation


def _check_finite(evaluation, prefix=''):
    for key, value in evaluation.items():
        if isinstance(value, dict):
            _check_finite(value, prefix + key + '.')
        elif not math.isfinite(value):
            raise tools.ToolError('%s%s is %s: the model produces non-finite output'
                                  % (prefix, key, value))


def write(path, evaluation):
    try:
        with files.atomic_write(path, 'w') as stream:
            json.dump(evaluation, stream, indent=2)
            stream.write('\n')
    except OSError as error:
        raise tools.ToolError('cannot write %s (%s)' % (path, error.strerror or error))


def table(evaluation):
    """The evaluation as printable text."""
    lines = [
        '%d of the %d validation utterances (%.1f s)'
        % (evaluation['files'], evaluation['validation_files'], evaluation['seconds']),
        'AutoEncoder output spectrogram: MSE %.4f, LSD %.2f dB'
        % (evaluation['spectrogram_mse'], evaluation['spectrogram_lsd_db']),
        '',
        '%-36s %8s %8s %10s' % ('rendering', 'MCD dB', 'LSD dB', 'spec.conv.'),
    ]
    for key, label in RENDERINGS:
        row = evaluation[key]
        lines.append('%-36s %8.2f %8.2f %10.3f'
                     % (label, row['mcd_db'], row['lsd_db'], row['spectral_convergence']))
    lines.append('')
    lines.append('MCD: against the input spectrogram with its true phase; WORLD at %d Hz (%s, '
                 'cheaptrick), order %d, alpha %.3f, c0 and frames more than %g dB below the '
                 'loudest left out.' % (MCD_SAMPLE_RATE, F0_METHOD, metrics.MCEP_ORDER,
                                         metrics.mcep_alpha(MCD_SAMPLE_RATE), metrics.SILENCE_DB))
    lines.append('LSD and spectral convergence: against the input spectrogram (0-4 kHz); '
                 'Griffin-Lim: %d iterations.' % evaluation['griffin_lim_iterations'])
    return '\n'.join(lines)


def _main(args):
    evaluation = evaluate(args.results, args.dataset, args.gpu, args.max_files,
                          args.griffin_lim_iterations)
    print()
    print(table(evaluation))
    print('written to %s' % os.path.join(args.results, FILENAME))


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog=PROG, description='Spectrogram MSE, log-spectral distance and mel-cepstral '
        'distortion of a trained AutoEncoder on its validation utterances; writes '
        'evaluation.json into the results folder.')
    parser.add_argument('results', help='results folder of a finished run')
    parser.add_argument('--dataset', '-d', default=None, metavar='DIR',
                        help='corpus folder (default: the run\'s, from summary.json)')
    parser.add_argument('--max-files', type=int, default=None, metavar='N',
                        help='evaluate only the first N validation files')
    tools.add_common_arguments(parser)
    args = parser.parse_args(argv)
    if args.max_files is not None and args.max_files < 1:
        parser.error('--max-files must be at least 1')
    if args.griffin_lim_iterations < 0:
        parser.error('--griffin-lim-iterations must be >= 0')
    return tools.run_tool(PROG, _main, args)


if __name__ == '__main__':
    sys.exit(main())
