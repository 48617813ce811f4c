"""How much of a trained AutoEncoder's latent is used: ``python -m common.latent analyze``.

    python -m common.latent analyze results/<id> [--dataset DIR] [--gpu N] [--max-files N]
                                    [--truncation-points N] [--speaker-level N]

The record ends: "a 4096 x 16 latent feels somewhat large".  One block's latent holds 65,536
values for an input of 8,192 (8x overcomplete; c9335bce's 1024 x 16 x 9 is 18x).  This measures
how much of it the model uses, on the run's validation utterances, recreated as
:mod:`common.evaluate` does (``load_corpus`` with the run's seed; whole recordings, min-max
scaled as a whole, cut into 32-frame blocks; files longer than 51 s in segments).  The measures
and their conventions are in :mod:`common.latent_measures`.

Two passes over the utterances:

1. encode each (segment by segment: blocks are encoded independently, so no margins are
   needed) and accumulate the frame statistics, a random sample of whole blocks and the
   time-pooled blocks of the probe.  Only a block's real time steps count: in the last,
   padded block of an utterance, the ceil(real frames x T / 32) first of its T latent steps.
   Then one PCA of the frames.
2. for each k of the truncation grid, decode each utterance's latent with every frame projected
   on the k leading components and measure against the input spectrogram: spectrogram MSE,
   log-spectral distance and mel-cepstral distortion (:mod:`common.metrics`, as
   ``common.evaluate`` does) of the decoded spectrogram rendered with the input's true phase
   (no Griffin-Lim: the curve shows what the decoder loses, not phase reconstruction's
   artefacts).  Long files in segments with margins, exactly as in :mod:`common.evaluate`.
   Each number is averaged over utterances.

The speaker of a file is the name of its folder at ``--speaker-level`` below the corpus folder
(default 1: ``<corpus>/<speaker>/...``, as in the demo corpus, ``data/demo/<voice>/nnn.flac``,
LibriSpeech's ``<speaker>/<chapter>/...`` and VCTK's ``wav48/<speaker>/...`` with --dataset at
``wav48``); 0 means the corpus has no speaker folders, and the probe is skipped.

Writes ``latent_analysis.json`` and ``latent_analysis.png`` (scree, truncation curve, voice map)
into the results folder, prints a table, and rewrites the run's ``index.html``.
"""
import json
import os
import resource
import time

import numpy

import common  # noqa: F401
from common import evaluate, files, inference, latent, metrics
from common import latent_measures as measures
from common import reconstruct as tools
from common import spectrogram as sp

TRUNCATION_POINTS = 12


def speaker_of(relative, level):
    """The speaker of a file (its path relative to the corpus folder, '/'-separated): the
    name of its folder at ``level`` (1: the first folder under the corpus folder); None when
    the file lies above that level."""
    folders = relative.split('/')[:-1]
    return folders[level - 1] if len(folders) >= level else None


def _voices(paths, root, level):
    if level == 0:
        return [None] * len(paths)
    voices = []
    for path in paths:
        relative = os.path.relpath(path, root).replace(os.sep, '/')
        voice = speaker_of(relative, level)
        if voice is None:
            raise tools.ToolError(
                '%s: no speakers: %s is not in a folder %d level%s below the corpus folder, '
                'which would name its voice (give --speaker-level 0 to skip the speaker probe, '
                'or --dataset the folder above the speaker folders)'
                % (root, relative, level, '' if level == 1 else 's'))
        voices.append(voice)
    return voices


def _scaled(wave):
    return sp.normalize_batch(numpy.asarray(wave, dtype=numpy.float32)[None])[0][0]


def _piece(scaled, start, stop):
    offset = start * sp.HOP_LENGTH
    return scaled[offset:offset + sp.wave_length(stop - start)]


def real_steps(frames, steps):
    """Latent time steps of each block of an utterance of ``frames`` frames that hold real
    frames: [steps, ..., ceil(the last block's real frames x steps / 32)]."""
    blocks = -(-frames // sp.FRAMES)
    last = frames - (blocks - 1) * sp.FRAMES
    return [steps] * (blocks - 1) + [-(-last * steps // sp.FRAMES)]


def encoded_segments(model, scaled, device, segment_frames=None):
    """(spectrogram frames, latents (blocks, C, T, F)) of each segment of a scaled utterance,
    in order: the latents of the whole utterance, a segment at a time."""
    frames = sp.n_frames(len(scaled))
    for _, start, stop, _ in evaluate.segments(frames, segment_frames, 0):
        spectrogram = tools.recording_spectrogram(_piece(scaled, start, stop))
        latents = inference.encode(model, spectrogram, device)
        if not numpy.isfinite(latents).all():
            raise tools.ToolError('the model\'s latent has NaN or Inf values (a diverged run?)')
        yield len(spectrogram), latents


def truncated_output(model, spectrogram, truncate, k, device=None):
    """The network's output for a (T, 256) spectrogram with each latent frame truncated to k
    components (:class:`common.latent_measures.Truncation`)."""
    latents = inference.encode(model, spectrogram, device)
    return inference.decode(model, truncate(latents, k), len(spectrogram), device)


def truncation_utterance(model, wave, truncate, grid, device=None,
                         f0_method=evaluate.F0_METHOD, segment_frames=None, margin_frames=None,
                         progress=None):
    """{k: {'mse', 'lsd', 'mcd'}} of one utterance, measured as :mod:`common.evaluate`
    measures its 'autoencoder_true_phase' rendering and its spectrogram numbers (in segments
    with margins, combined exactly: :func:`common.evaluate.evaluate_utterance`).
    ``progress(seconds done, seconds)``, if given, is called after each segment."""
    scaled = _scaled(wave)
    frames = sp.n_frames(len(scaled))
    sums = {k: {'squared_error': 0.0, 'lsd': [], 'mcd': []} for k in grid}
    powers = []
    for context_start, start, stop, context_stop in evaluate.segments(frames, segment_frames,
                                                                     margin_frames):
        piece = _piece(scaled, context_start, context_stop)
        spectrogram = tools.recording_spectrogram(piece)
        phase = sp.stft(piece)
        inside = slice(start - context_start, stop - context_start)
        reference, world, power = evaluate.segment_reference(
            piece, spectrogram, phase, inside.start, inside.stop, stop == frames, f0_method)
        powers.append(power)
        target = spectrogram[inside]
        latents = inference.encode(model, spectrogram, device)
        for k in grid:
            output = tools.check_finite(inference.decode(model, truncate(latents, k),
                                                         len(spectrogram), device))
            entry = sums[k]
            entry['squared_error'] += (metrics.spectrogram_mse(target, output[inside])
                                       * len(target) * sp.BINS)
            entry['lsd'].append(metrics.frame_log_spectral_distances(target, output[inside]))
            entry['mcd'].append(reference.frame_distortions(sp.to_wave(output, phase=phase))[world])
        if progress is not None:
            progress(sp.wave_length(stop) / sp.SAMPLE_RATE, sp.wave_length(frames) / sp.SAMPLE_RATE)
    speech = evaluate.speech_mask(powers)
    return {k: {'mse': entry['squared_error'] / (frames * sp.BINS),
                'lsd': float(numpy.mean(numpy.concatenate(entry['lsd']))),
                'mcd': float(numpy.mean(numpy.concatenate(entry['mcd'])[speech]))}
            for k, entry in sums.items()}


def _peak_memory_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def analyze(folder, dataset_path=None, gpu=-1, max_files=None, points=TRUNCATION_POINTS,
            speaker_level=1, f0_method=evaluate.F0_METHOD, segment_frames=None, log=print,
            write_page=True):
    """Analyse a finished run's latent on its validation utterances; writes and returns the
    analysis (latent_analysis.json), draws latent_analysis.png, rewrites index.html."""
    began = time.time()
    summary = tools.check_folder(folder)
    dataset_path = evaluate.run_dataset(folder, summary, dataset_path)
    device = tools.get_device(gpu)
    model, summary = tools.load_model(folder, device)
    shape = latent.latent_shape(model, device)
    if len(shape) != 3:
        raise tools.ToolError('%s: latent of shape %s; the analysis reads (channels, time, '
                              'frequency)' % (folder, shape))
    channels, steps, width = shape
    units = channels * width
    corpus = evaluate.validation_corpus(summary, dataset_path, log)
    if corpus.n_files < 2:
        raise tools.ToolError('%s: one usable audio file; the latent analysis needs validation '
                              'utterances that training did not see (a corpus of 2 or more '
                              'files)' % dataset_path)
    # copies: the decoded corpus (every file, views of one array) can then be freed
    chosen = [(path, numpy.array(wave)) for path, wave in
              list(zip(corpus.validation_files, corpus.validation_waves))[:max_files]]
    validation_files = len(corpus.validation_files)
    del corpus
    voices = _voices([path for path, _ in chosen], dataset_path, speaker_level)
    names = ['[%d/%d] %s' % (index + 1, len(chosen), os.path.relpath(path, dataset_path))
             for index, (path, _) in enumerate(chosen)]

    # pass 1: statistics of the latent
    statistics = measures.FrameStatistics(units)
    blocks = measures.Reservoir(measures.MAX_BLOCKS, seed=0)
    pooled = measures.Reservoir(measures.MAX_PROBE_BLOCKS, seed=1)
    seconds = 0.0
    for index, (name, (path, wave), voice) in enumerate(zip(names, chosen, voices)):
        scaled = _scaled(wave)
        frames = sp.n_frames(len(scaled))
        seconds += sp.wave_length(frames) / sp.SAMPLE_RATE
        count = 0
        for segment_frames_count, latents in encoded_segments(model, scaled, device,
                                                              segment_frames):
            kept = real_steps(segment_frames_count, steps)
            vectors = []
            for block, real in zip(latents, kept):
                frame_vectors = block[:, :real].transpose(1, 0, 2).reshape(real, units)
                vectors.append(frame_vectors)
                if real == steps:
                    blocks.add(block.copy())
                pooled.add((frame_vectors.mean(axis=0), voice, index))
            statistics.add(numpy.concatenate(vectors))
            count += len(latents)
        log('%s: %d frames, %d latent blocks encoded' % (name, frames, count))
    activity = statistics.activity()
    route = ('Gram matrix of the frames' if statistics.covariance_sum is None
             else 'accumulated %d x %d covariance' % (units, units))
    log('frame PCA: %d frames x %d units (%s)...' % (statistics.count, units, route))
    started = time.time()
    mean = statistics.mean
    values, components = statistics.decompose()
    del statistics
    log('frame PCA: %d components in %.1f s' % (components.shape[1], time.time() - started))
    spectrum = measures.spectrum_measures(values)
    block_sample = numpy.stack(blocks.items) if blocks.items else numpy.zeros((0, 1))
    log('block PCA: %d of %d whole blocks (%d values each)...'
        % (len(blocks.items), blocks.seen, channels * steps * width))
    block_result = measures.block_spectrum(block_sample, blocks.seen)
    del block_sample, blocks

    # pass 2: truncation
    rank = measures.numerical_rank(values)
    grid = measures.truncation_grid(units, rank, points)
    truncate = measures.Truncation(mean, components, shape)
    log('truncation: k = %s, %d utterances' % (', '.join(str(k) for k in grid), len(chosen)))
    results = []
    for name, (path, wave) in zip(names, chosen):
        def progress(done, seconds, name=name):  # long files: a line per segment
            if done < seconds:
                log('%s: %.0f of %.0f s measured' % (name, done, seconds))

        result = truncation_utterance(model, wave, truncate, grid, device, f0_method,
                                      segment_frames, progress=progress)
        results.append(result)
        log('%s: MCD %.2f dB at k = %d ... %.2f dB at the full %d'
            % (name, result[grid[0]]['mcd'], grid[0], result[grid[-1]]['mcd'], grid[-1]))
    del truncate, components
    curve = [{'k': k, **{key: float(numpy.mean([r[k][key] for r in results]))
                         for key in ('mse', 'lsd', 'mcd')}} for k in grid]

    # the speaker probe
    features = numpy.stack([item[0] for item in pooled.items])
    sample_voices = [item[1] for item in pooled.items]
    utterances = [item[2] for item in pooled.items]
    if speaker_level == 0:
        probe = {'note': 'no speaker folders (--speaker-level 0): probe skipped'}
        voice_map = measures.voice_map(features, ['all'] * len(features))
    else:
        log('speaker probe: %d blocks of %d utterances, %d voices...'
            % (len(features), len(chosen), len(set(voices))))
        probe = measures.speaker_probe(features, sample_voices, utterances)
        voice_map = measures.voice_map(features, sample_voices)

    analysis = {
        'experiment': summary['experiment'],
        'latent_shape': list(shape),
        'dataset': dataset_path,
        'files': len(chosen),
        'validation_files': validation_files,
        'seconds': round(seconds, 3),
        **activity,
        **spectrum,
        'pca': route,
        'rank': rank,
        'scree': measures.scree(values),
        'blocks': block_result,
        'truncation': curve,
        'truncation_rendering': 'decoded spectrogram with the input\'s true phase',
        'k_within_0_1_db': measures.smallest_k_within(curve, 'mcd', measures.MCD_TOLERANCE_DB),
        'k_within_1_percent_mse': measures.smallest_k_within(curve, 'mse',
                                                             measures.MSE_TOLERANCE,
                                                             relative=True),
        'f0_method': f0_method,
        'speaker_level': speaker_level,
        'speaker_probe': probe,
        'voice_map': voice_map,
    }
    write(os.path.join(folder, measures.FILENAME), analysis)
    plot_analysis(os.path.join(folder, measures.FIGURE), analysis)
    if write_page:
        _write_page(folder, log)
    log('done in %.0f s, peak memory %.0f MB' % (time.time() - began, _peak_memory_mb()))
    return analysis


def _write_page(folder, log):
    from common import report, runs
    try:
        report.update_pages(folder)
    except runs.RunError as error:  # the analysis is written; the page can be made later
        log('warning: index.html not rewritten (%s)' % error)


def write(path, analysis):
    try:
        with files.atomic_write(path, 'w') as stream:
            json.dump(analysis, stream, indent=1)
            stream.write('\n')
    except OSError as error:
        raise tools.ToolError('cannot write %s (%s)' % (path, error.strerror or error))


def table(analysis):
    """The analysis as printable text."""
    rows = measures.summary_rows(analysis)
    width = max(len(label) for label, _, _ in rows)
    lines = ['%-*s  %s %s' % (width, label, value, unit) for label, value, unit in rows]
    lines += ['', 'truncation (each frame on its k leading principal components; decoded, '
              'true phase):', '%10s %10s %10s %10s' % ('k', 'MSE', 'LSD dB', 'MCD dB')]
    lines += ['%10d %10.4g %10.3f %10.3f' % (point['k'], point['mse'], point['lsd'],
                                             point['mcd']) for point in analysis['truncation']]
    return '\n'.join(lines)


# -- figures ---------------------------------------------------------------------------------

def _scree_axes(ax, entries):
    for label, scree in entries:
        if scree.get('k'):
            ax.plot(scree['k'], scree['explained'], marker='.', label=label)
    for level in measures.VARIANCE_LEVELS:
        ax.axhline(level, color='gray', lw=0.8, ls=':')
    ax.set_xscale('log')
    ax.set_ylim(0, 1.01)
    ax.set_xlabel('principal components k')
    ax.set_ylabel('fraction of the variance')
    ax.set_title('scree: cumulative variance')
    ax.grid(True, which='both', alpha=0.3)
    ax.legend(fontsize='small')


def _truncation_axes(ax, entries):
    for label, analysis in entries:
        curve = analysis.get('truncation') or []
        if curve:
            line, = ax.plot([p['k'] for p in curve], [p['mcd'] for p in curve], marker='o',
                            label='%s MCD' % label)
            k = analysis.get('k_within_0_1_db')
            if k is not None:
                ax.axvline(k, color=line.get_color(), ls='--', lw=0.8)
    ax.set_xscale('log')
    ax.set_xlabel('principal components kept per frame, k')
    ax.set_ylabel('MCD [dB] (true phase)')
    ax.set_title('truncation (dashed: smallest k within %g dB)' % measures.MCD_TOLERANCE_DB)
    ax.grid(True, which='both', alpha=0.3)
    ax.legend(fontsize='small')


def plot_analysis(path, analysis):
    """latent_analysis.png: scree, truncation curve (MCD and MSE) and voice map."""
    import matplotlib.pyplot as plt
    from common import plot
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    blocks = analysis.get('blocks') or {}
    _scree_axes(axes[0], [('frames (%d units)' % analysis['units'], analysis['scree']),
                          ('whole blocks (%d sampled)' % blocks.get('blocks', 0),
                           blocks.get('scree') or {})])
    _truncation_axes(axes[1], [('', analysis)])
    curve = analysis['truncation']
    twin = axes[1].twinx()
    twin.plot([p['k'] for p in curve], [p['mse'] for p in curve], color='tab:red', marker='.',
              ls=':', label='MSE')
    twin.set_ylabel('spectrogram MSE (dotted)', color='tab:red')
    twin.ticklabel_format(axis='y', useOffset=False)
    axes[1].ticklabel_format(axis='y', useOffset=False)
    ax = axes[2]
    voice_map = analysis.get('voice_map') or {}
    names = voice_map.get('voices') or []
    colours = plt.get_cmap('tab10' if len(names) <= 10 else 'tab20')
    for index, name in enumerate(names):
        chosen = [i for i, v in enumerate(voice_map['voice']) if v == index]
        ax.scatter([voice_map['x'][i] for i in chosen], [voice_map['y'][i] for i in chosen],
                   s=12, color=colours(index % colours.N), label=str(name))
    probe = analysis.get('speaker_probe') or {}
    if 'accuracy' in probe:
        title = 'voices: probe %.0f %% (chance %.0f %%)' % (100 * probe['accuracy'],
                                                            100 * probe['chance'])
    else:
        title = 'time-pooled blocks (probe skipped)'
    ax.set_title(title)
    ax.set_xlabel('principal component 1')
    ax.set_ylabel('principal component 2')
    if names:
        ax.legend(fontsize='x-small', markerscale=1.5)
    fig.suptitle('latent of %s: %s' % (analysis.get('experiment', '?'), ' x '.join(
        str(n) for n in analysis.get('latent_shape', []))))
    fig.tight_layout()
    plot.save_figure(fig, path)


def plot_comparison(path, entries):
    """The runs' scree and truncation curves on shared axes: [(label, analysis)]."""
    import matplotlib.pyplot as plt
    from common import plot
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    _scree_axes(axes[0], [('%s (%d units)' % (label, analysis.get('units', 0)),
                           analysis.get('scree') or {}) for label, analysis in entries])
    _truncation_axes(axes[1], entries)
    fig.tight_layout()
    plot.save_figure(fig, path)


def main(args):
    """The analyze subcommand of :mod:`common.latent` (parsed arguments)."""
    analysis = analyze(args.results, args.dataset, args.gpu, args.max_files,
                       args.truncation_points, args.speaker_level)
    print()
    print(table(analysis))
    print('written to %s and %s' % (os.path.join(args.results, measures.FILENAME),
                                    os.path.join(args.results, measures.FIGURE)))

