"""Objective quality of a trained AutoEncoder on its validation utterances.

    python -m common.evaluate results/<id> [--dataset DIR] [--gpu N] [--max-files N]
                              [--f0-method harvest|dio] [--dnsmos]

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
- ``stoi``, ``estoi``: short-time objective intelligibility (pystoi) against the reference.
- ``pesq_nb``: narrowband PESQ (P.862 at 8 kHz, MOS-LQO) against the reference; only where the
  pesq package is installed (the ``metrics`` extra).  Without it the evaluation says once why
  it was skipped (``skipped`` in evaluation.json) and goes on.
- ``f0_rmse_cents``, ``vuv_error``, ``f0_correlation``: the wave's WORLD F0 (``--f0-method``,
  at 8000 Hz, 5 ms frames) against the reference's: RMSE in cents and Pearson correlation on
  the frames voiced in both, the fraction of all frames whose voicing differs.
- ``dnsmos_ovrl_change``, with ``--dnsmos`` only (the ``mos`` extra): the wave's DNSMOS P.835
  overall score (a non-intrusive estimate of a listener's rating, the model speechmos ships)
  minus the reference's.  A difference, not the scores: DNSMOS was trained on wideband noisy
  speech, and every wave here is band-limited (and the demo voices synthetic).

And for the network's output spectrogram itself: ``spectrogram_mse`` (the training loss, here on
whole utterances) and ``spectrogram_lsd_db``.  Each number is computed per utterance and averaged
over utterances (each counts once; utterances where it is undefined -- no voiced frame, no
speech for STOI -- left out).  evaluation.json in the results folder holds them (read by
:mod:`common.report` and :mod:`common.compare`) with ``files`` (utterances evaluated),
``validation_files`` (in the split), ``seconds`` (of audio), ``griffin_lim_iterations`` and
``f0_method``, and, with the same nesting:

- ``confidence_95``: [low, high], the 95 % confidence interval of each mean, Student's t over
  utterances (:mod:`common.confidence`; ``method`` says so);
- ``per_utterance``: each number per utterance (6 significant digits, null where undefined),
  in the order of ``per_utterance.file`` (paths in the corpus folder) with ``frames``: what
  ``common.compare`` pairs to test whether two runs differ.

A table (mean +- half the interval) is printed, and the run's index.html is rewritten.
"""
import argparse
import json
import math
import os
import sys

import numpy

import common  # noqa: F401
from common import confidence, dataset, files, inference, metrics, report, runs
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
F0_MEASURES = ('f0_rmse_cents', 'vuv_error', 'f0_correlation')
#: The numbers of each rendering, in the table's order; 'pesq_nb' only where the pesq package
#: is installed (the `metrics` extra).
MEASURES = ('mcd_db', 'lsd_db', 'spectral_convergence', 'stoi', 'estoi', 'pesq_nb') + F0_MEASURES
#: With --dnsmos (the `mos` extra), also: the rendering's DNSMOS P.835 overall score minus the
#: reference's.
DNSMOS_MEASURE = 'dnsmos_ovrl_change'
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
    measure is a mean over frames (LSD, MCD with the loudest frame of the whole utterance, the
    F0 measures), sums of squares where it is a ratio of norms (spectral convergence), and
    weighted segment scores where the measure does not split into frames (STOI and ESTOI
    weighted by their 384 ms windows, PESQ by the segment's seconds)."""

    def __init__(self):
        self.frames = 0
        self.squared_error = 0.0
        self.lsd = []
        self.power = []  # WORLD frame power of the recording, for the silent-frame rule
        self.f0 = []  # WORLD F0 of the reference, the input with its true phase
        self.renderings = {key: {'lsd': [], 'mcd': [], 'sc_error': 0.0, 'f0': [],
                                 'stoi': [], 'estoi': [], 'pesq_nb': [], DNSMOS_MEASURE: []}
                           for key, _ in RENDERINGS}
        self.target_energy = 0.0
        self.pesq = False
        self.dnsmos = False

    def result(self):
        speech = speech_mask(self.power)
        reference_f0 = numpy.concatenate(self.f0)
        result = {
            'frames': self.frames,
            'spectrogram_mse': self.squared_error / (self.frames * sp.BINS),
            'spectrogram_lsd_db': float(numpy.mean(numpy.concatenate(self.lsd))),
        }
        for key, sums in self.renderings.items():
            pitch = metrics.f0_measures(reference_f0, numpy.concatenate(sums['f0']))
            result[key] = {
                'mcd_db': float(numpy.mean(numpy.concatenate(sums['mcd'])[speech])),
                'lsd_db': float(numpy.mean(numpy.concatenate(sums['lsd']))),
                'spectral_convergence': math.sqrt(sums['sc_error'] / self.target_energy),
                'stoi': _weighted_mean(sums['stoi']),
                'estoi': _weighted_mean(sums['estoi']),
            }
            if self.pesq:
                result[key]['pesq_nb'] = _weighted_mean(sums['pesq_nb'])
            if self.dnsmos:
                result[key][DNSMOS_MEASURE] = _weighted_mean(sums[DNSMOS_MEASURE])
            for measure in F0_MEASURES:
                result[key][measure] = pitch[measure]
        return result


def _weighted_mean(scores):
    """Mean of (score, weight) pairs weighted by weight, leaving out undefined scores (None)."""
    scores = [(score, weight) for score, weight in scores if score is not None and weight > 0]
    if not scores:
        return None
    return float(sum(score * weight for score, weight in scores)
                 / sum(weight for _, weight in scores))


def evaluate_utterance(model, wave, device=None,
                       griffin_lim_iterations=tools.GRIFFIN_LIM_ITERATIONS, f0_method=F0_METHOD,
                       segment_frames=None, margin_frames=None, progress=None, pesq=None,
                       dnsmos=False):
    """The numbers of one 16 kHz utterance (raw, any scale): a dict of floats, one dict per
    rendering (None where a number is undefined: no voiced frame, no speech for STOI).

    The utterance is scaled as a whole, then measured in segments of ``segment_frames`` frames
    (:func:`segments`), each on its context of ``margin_frames`` more frames on either side, so
    memory stays that of one segment whatever the utterance's length (a 30-minute file once
    needed more than 24 GB).  The spectrogram, the network's output (32-frame blocks aligned as
    in the whole utterance), the true-phase waves and the WORLD frames (5 ms, aligned: ALIGN)
    of a segment's frames are exactly those of the whole utterance; the numbers are combined
    exactly (per-frame means, sums of squares, the silent-frame rule on the loudest frame of the
    whole utterance, the F0 contours joined).  What may differ in a long utterance: Griffin-Lim
    starts each context from its own random phase, and harvest's F0 sees the context only (the
    margins keep both away from the segment's edges); STOI and ESTOI, means over 384 ms windows
    of the frames within 40 dB of the loudest, are the window-weighted mean of the segments'
    (each segment's loudest frame sets its threshold, and the 29 windows that straddle a
    segment boundary are missing), and PESQ, which does not split into frames, is the
    seconds-weighted mean of the segments' (P.862 is made for 8-20 s samples).  An utterance of
    at most ``segment_frames`` frames is one segment: the same numbers as measuring it whole.
    ``progress(seconds done, seconds)``, if given, is called after each segment.
    ``pesq``: measure narrowband PESQ (default: where the pesq package is installed).
    ``dnsmos``: measure each rendering's DNSMOS overall score minus the reference's
    (seconds-weighted over segments, as PESQ).
    """
    scaled = sp.normalize_batch(numpy.asarray(wave, dtype=numpy.float32)[None])[0][0]
    frames = sp.n_frames(len(scaled))
    sums = _Sums()
    sums.pesq = metrics.pesq_unavailable() is None if pesq is None else bool(pesq)
    sums.dnsmos = bool(dnsmos)
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


def segment_reference(piece, spectrogram, phase, start, stop, last, f0_method=F0_METHOD,
                      true_phase_input=None):
    """The MCD reference of frames [start, stop) of a context ``piece`` (scaled wave; its
    spectrogram and STFT phase): (:class:`common.metrics.MelCepstrumReference` of the input
    with its true phase, every frame kept; the slice of its WORLD frames that are the
    segment's; their power in dB, for :func:`speech_mask` on the whole utterance).  ``last``:
    the segment ends the utterance; ``true_phase_input``: that wave, if already rendered."""
    # WORLD frames (5 ms) of the segment: 6.4 per spectrogram frame; the last segment's run on
    # to the end of the wave, as the whole utterance's do.
    world = slice(start * sp.HOP_LENGTH // WORLD_HOP, None if last
                  else stop * sp.HOP_LENGTH // WORLD_HOP)
    if true_phase_input is None:
        true_phase_input = sp.to_wave(spectrogram, phase=phase)
    reference = metrics.MelCepstrumReference(
        true_phase_input, sp.SAMPLE_RATE, f0_method=f0_method,
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
    true_phase_input = sp.to_wave(spectrogram, phase=phase)
    reference, world, power = segment_reference(piece, spectrogram, phase, start, stop, last,
                                                f0_method, true_phase_input)
    sums.power.append(power)
    sums.f0.append(_f0(true_phase_input, f0_method)[world])
    waves = {
        'griffin_lim_input': sp.to_wave(spectrogram, n_iter=griffin_lim_iterations),
        'autoencoder_griffin_lim': sp.to_wave(output, n_iter=griffin_lim_iterations),
        'autoencoder_true_phase': sp.to_wave(output, phase=phase),
    }
    first, length = start * sp.HOP_LENGTH, sp.wave_length(count)
    # The segment's samples for STOI and PESQ: its frames' hops, the last to the end of the wave
    # (the segments' samples then partition the utterance's).
    samples = slice(first, None if last else first + count * sp.HOP_LENGTH)
    clean = true_phase_input[samples]
    windows = metrics.stoi_windows(clean)
    seconds = len(clean) / sp.SAMPLE_RATE
    clean_quality = metrics.dnsmos_overall(clean) if sums.dnsmos else None
    for key, wave in waves.items():
        rendering = sums.renderings[key]
        rendered = tools.recording_spectrogram(wave)[inside]
        rendering['lsd'].append(metrics.frame_log_spectral_distances(target, rendered))
        rendering['mcd'].append(reference.frame_distortions(wave)[world])
        convergence = metrics.spectral_convergence(target, wave[first:first + length])
        rendering['sc_error'] += convergence ** 2 * energy
        rendering['f0'].append(_f0(wave, f0_method)[world])
        if windows:
            for measure, extended in (('stoi', False), ('estoi', True)):
                rendering[measure].append((metrics.stoi(clean, wave[samples],
                                                        extended=extended), windows))
        if sums.pesq:
            rendering['pesq_nb'].append((metrics.pesq_narrowband(clean, wave[samples]), seconds))
        if sums.dnsmos:
            rendering[DNSMOS_MEASURE].append(
                (metrics.dnsmos_overall(wave[samples]) - clean_quality, seconds))


def _round(value):
    """A per-utterance value as stored: 6 significant digits (None stays None)."""
    return None if value is None else float('%.6g' % value)


def summarize(results, names):
    """evaluation.json's numbers from :func:`evaluate_utterance`'s dicts (one per utterance,
    named by ``names``): each number's mean over utterances (None where no utterance has it)
    under its own key, its 95 % interval under ``confidence_95`` and the per-utterance values
    under ``per_utterance`` (both with the same nesting; ``per_utterance.file``: the names)."""
    means, intervals = {}, {'method': confidence.METHOD}
    per_utterance = {'file': list(names), 'frames': [result['frames'] for result in results]}

    def walk(key_results, mean_node, interval_node, value_node):
        for key, value in key_results[0].items():
            column = [result[key] for result in key_results]
            if isinstance(value, dict):
                walk(column, mean_node.setdefault(key, {}), interval_node.setdefault(key, {}),
                     value_node.setdefault(key, {}))
            elif key != 'frames':
                mean_node[key], interval_node[key] = confidence.mean_interval(column)
                value_node[key] = [_round(item) for item in column]

    walk(results, means, intervals, per_utterance)
    means['confidence_95'] = intervals
    means['per_utterance'] = per_utterance
    return means


def _f0(wave, f0_method):
    """WORLD F0 of a 16 kHz rendering, analysed at MCD_SAMPLE_RATE (5 ms frames)."""
    wave = metrics.resample(numpy.asarray(wave, dtype=numpy.float64), sp.SAMPLE_RATE,
                            MCD_SAMPLE_RATE)
    return metrics.f0_contour(wave, MCD_SAMPLE_RATE, f0_method)[0]


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
             griffin_lim_iterations=tools.GRIFFIN_LIM_ITERATIONS, f0_method=F0_METHOD, log=print,
             dnsmos=False):
    """Evaluate a finished run on its validation utterances; writes and returns evaluation.json.

    dnsmos: also the DNSMOS change of each rendering (ToolError where it cannot run)."""
    summary = tools.check_folder(folder)
    if dnsmos and metrics.dnsmos_unavailable():
        raise tools.ToolError('--dnsmos: ' + metrics.dnsmos_unavailable())
    dataset_path = run_dataset(folder, summary, dataset_path)
    device = tools.get_device(gpu)
    model, summary = tools.load_model(folder, device)  # before a corpus that may take long
    corpus = validation_corpus(summary, dataset_path, log)
    files = list(zip(corpus.validation_files, corpus.validation_waves))
    if max_files is not None:
        files = files[:max_files]
    pesq_skipped = metrics.pesq_unavailable()
    if pesq_skipped:
        log('PESQ skipped: %s' % pesq_skipped)
    results, names = [], []
    for index, (path, wave) in enumerate(files):
        relative = os.path.relpath(path, dataset_path)
        name = '[%d/%d] %s' % (index + 1, len(files), relative)

        def progress(done, seconds):  # long files: a line per segment
            if done < seconds:
                log('%s: %.0f of %.0f s measured' % (name, done, seconds))

        result = evaluate_utterance(model, wave, device, griffin_lim_iterations, f0_method,
                                    progress=progress, pesq=not pesq_skipped, dnsmos=dnsmos)
        _check_finite(result)
        results.append(result)
        names.append(relative.replace(os.sep, '/'))
        log('%s: %d frames, MCD %.2f dB (AutoEncoder, Griffin-Lim), %.2f dB (Griffin-Lim alone)'
            % (name, result['frames'], result['autoencoder_griffin_lim']['mcd_db'],
               result['griffin_lim_input']['mcd_db']))
    evaluation = {
        'files': len(results),
        'validation_files': len(corpus.validation_files),
        'seconds': round(sum(sp.wave_length(result['frames']) for result in results)
                         / sp.SAMPLE_RATE, 3),
        'griffin_lim_iterations': griffin_lim_iterations,
        'f0_method': f0_method,
    }
    if pesq_skipped:
        evaluation['skipped'] = {'pesq_nb': pesq_skipped}
    evaluation.update(summarize(results, names))
    write(os.path.join(folder, FILENAME), evaluation)
    try:
        report.update_pages(folder)  # the run's page shows the new numbers
    except runs.RunError as error:
        raise tools.ToolError('%s written, but not the page: %s' % (FILENAME, error))
    return evaluation


def _check_finite(result, prefix=''):
    """ToolError at the first NaN or infinity of an utterance's numbers (None: undefined)."""
    for key, value in result.items():
        if isinstance(value, dict):
            _check_finite(value, prefix + key + '.')
        elif value is not None and not math.isfinite(value):
            raise tools.ToolError('%s%s is %s: the model produces non-finite output'
                                  % (prefix, key, value))


def _json(value, indent=''):
    """JSON text of evaluation.json: nested objects indented, each list on one line (the
    per-utterance columns of a large validation split stay far below report's size limit)."""
    if isinstance(value, dict) and value:
        inner = indent + '  '
        items = ['%s%s: %s' % (inner, json.dumps(key), _json(item, inner))
                 for key, item in value.items()]
        return '{\n' + ',\n'.join(items) + '\n' + indent + '}'
    return json.dumps(value, separators=(', ', ': '), allow_nan=False)


def write(path, evaluation):
    try:
        with files.atomic_write(path, 'w') as stream:
            stream.write(_json(evaluation) + '\n')
    except OSError as error:
        raise tools.ToolError('cannot write %s (%s)' % (path, error.strerror or error))


#: measure: (table label, scale, digits); the table shows value * scale.
TABLE_ROWS = {
    'mcd_db': ('MCD dB', 1, 2),
    'lsd_db': ('LSD dB', 1, 2),
    'spectral_convergence': ('spectral convergence', 1, 3),
    'stoi': ('STOI', 1, 3),
    'estoi': ('ESTOI', 1, 3),
    'pesq_nb': ('PESQ (narrowband)', 1, 2),
    DNSMOS_MEASURE: ('DNSMOS OVRL change', 1, 2),
    'f0_rmse_cents': ('F0 RMSE cents', 1, 1),
    'vuv_error': ('V/UV error %', 100, 1),
    'f0_correlation': ('F0 correlation', 1, 3),
}
TABLE_COLUMNS = ('input, Griffin-Lim', 'AutoEncoder, Griffin-Lim', 'AutoEncoder, true phase')


def _cell(mean, interval, scale=1, digits=2):
    """'mean +- half-width' of a 95 % t interval (symmetric), '-' when undefined."""
    if mean is None:
        return '-'
    if not interval:
        return '%.*f' % (digits, mean * scale)
    return '%.*f +- %.*f' % (digits, mean * scale, digits, (interval[1] - interval[0]) / 2 * scale)


def table(evaluation):
    """The evaluation as printable text: means +- the half-width of their 95 % intervals."""
    intervals = evaluation.get('confidence_95', {})
    lines = [
        '%d of the %d validation utterances (%.1f s); mean +- 95 %% confidence interval over '
        'utterances (Student t)'
        % (evaluation['files'], evaluation['validation_files'], evaluation['seconds']),
        'AutoEncoder output spectrogram: MSE %s, LSD %s dB'
        % (_cell(evaluation['spectrogram_mse'], intervals.get('spectrogram_mse'), digits=4),
           _cell(evaluation['spectrogram_lsd_db'], intervals.get('spectrogram_lsd_db'))),
        '',
        '%-22s' % 'measure' + ''.join(' %26s' % label for label in TABLE_COLUMNS),
    ]
    for measure, (label, scale, digits) in TABLE_ROWS.items():
        if not any(measure in evaluation[key] for key, _ in RENDERINGS):
            continue
        lines.append('%-22s' % label + ''.join(
            ' %26s' % _cell(evaluation[key].get(measure),
                            intervals.get(key, {}).get(measure), scale, digits)
            for key, _ in RENDERINGS))
    lines.append('')
    lines.append('Columns: Griffin-Lim (%d iterations) of the input spectrogram; of the '
                 'AutoEncoder\'s output; the output with the input\'s true phase.  Reference: '
                 'the input spectrogram (0-4 kHz) with its true phase.'
                 % evaluation['griffin_lim_iterations'])
    lines.append('MCD: WORLD at %d Hz (%s, cheaptrick), order %d, alpha %.3f, c0 and frames more '
                 'than %g dB below the loudest left out.'
                 % (MCD_SAMPLE_RATE, evaluation.get('f0_method', F0_METHOD), metrics.MCEP_ORDER,
                    metrics.mcep_alpha(MCD_SAMPLE_RATE), metrics.SILENCE_DB))
    lines.append('STOI, ESTOI (pystoi), PESQ (ITU-T P.862 narrowband, 8 kHz): against the '
                 'reference.  F0 (WORLD %s at %d Hz, 5 ms frames) against the reference\'s: '
                 'RMSE and correlation on frames voiced in both, V/UV error on all frames.'
                 % (evaluation.get('f0_method', F0_METHOD), MCD_SAMPLE_RATE))
    if any(DNSMOS_MEASURE in evaluation[key] for key, _ in RENDERINGS):
        lines.append('DNSMOS OVRL change: DNSMOS P.835 overall score of the rendering minus the '
                     'reference\'s (speechmos\' model).')
    for measure, reason in evaluation.get('skipped', {}).items():
        lines.append('%s skipped: %s' % (TABLE_ROWS.get(measure, (measure,))[0], reason))
    return '\n'.join(lines)


def _main(args):
    evaluation = evaluate(args.results, args.dataset, args.gpu, args.max_files,
                          args.griffin_lim_iterations, args.f0_method, dnsmos=args.dnsmos)
    print()
    print(table(evaluation))
    print('written to %s' % os.path.join(args.results, FILENAME))


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog=PROG, description='Spectrogram MSE, log-spectral distance, mel-cepstral '
        'distortion, STOI, ESTOI, narrowband PESQ and F0 errors of a trained AutoEncoder on its '
        'validation utterances, with 95 % confidence intervals; writes evaluation.json into '
        'the results folder.')
    parser.add_argument('results', help='results folder of a finished run')
    parser.add_argument('--dataset', '-d', default=None, metavar='DIR',
                        help='corpus folder (default: the run\'s, from summary.json)')
    parser.add_argument('--max-files', type=int, default=None, metavar='N',
                        help='evaluate only the first N validation files')
    parser.add_argument('--f0-method', choices=metrics.F0_METHODS, default=F0_METHOD,
                        help='WORLD F0 estimator of the MCD and the F0 measures: harvest '
                        '(robust; the slowest step, about 0.2 s per second of audio and '
                        'rendering on one core) or dio with stonemask (about 50 times faster, '
                        'more octave errors) (default: %(default)s)')
    parser.add_argument('--dnsmos', action='store_true',
                        help='also the DNSMOS P.835 overall score of each rendering minus the '
                        'reference\'s (needs the mos extra; slow: four waves per utterance, '
                        'each scored in 9 s windows starting every second, about 6 s of CPU '
                        'for a short utterance)')
    tools.add_common_arguments(parser)
    args = parser.parse_args(argv)
    if args.max_files is not None and args.max_files < 1:
        parser.error('--max-files must be at least 1')
    if args.griffin_lim_iterations < 0:
        parser.error('--griffin-lim-iterations must be >= 0')
    return tools.run_tool(PROG, _main, args)


if __name__ == '__main__':
    sys.exit(main())
