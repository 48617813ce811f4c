"""Compare finished results folders: a listening page, learning curves, spectrograms and tables.

    python -m common.compare results/bc7db4a2 results/c9335bce [more folders] --out results/compare

writes into ``--out``:

- ``index.html``: the listening page -- a summary table, the two figures below, and a table
  with the same utterances as rows (the real recorded utterance that pysptk ships, CMU ARCTIC
  a0007, and ``--excerpts`` validation excerpts of the first run's corpus and split) and as
  columns the input, the input through Griffin-Lim, then each run's output through Griffin-Lim,
  each cell an audio player with its numbers (:func:`common.evaluate.evaluate_utterance` on
  that utterance: spectrogram MSE and LSD, and MCD, LSD and spectral convergence of what is
  heard); the audio is in ``audio/``;
- ``learning_curves.png``: every run's training (solid) and validation (dashed) MSE per epoch,
  and the learning rate as logged where a log holds it;
- ``spectrograms.png``: the real utterance above each run's output for it;
- ``comparison.md``: the summary table, also printed.

The summary is one table per part: what differs between the runs (the optimizer with its
settings and the learning-rate schedule as logged always, then every hyper-parameter, the
model, corpus or device where the runs differ), then the results (summary.json's, the MSE on
the real utterance, and each number of ``evaluation.json`` -- ``common.evaluate`` -- that any
run has).  Rows are named by :mod:`common.measures`; a row no run has a value for is left out.

Every folder must hold a finished run (summary.json, log, model.npz), and ``--out`` must not
hold a comparison already (``--force`` replaces it, as training's ``--force`` replaces a run);
otherwise nothing is written and the command says which folder and why (exit status 2).
"""
import argparse
import os
import sys

import numpy

import common  # noqa: F401
import chainer

from common import audio, cli, confidence, dataset, evaluate, inference, measures, preview, report
from common import runs
from common import latent_analysis, latent_measures  # python -m common.latent analyze
from common import plot  # noqa: F401  (matplotlib on its Agg backend, files only)
from common import spectrogram as sp
from common import files

LEARNING_CURVES = 'learning_curves.png'
SPECTROGRAMS = 'spectrograms.png'
LATENT = 'latent.png'
TABLE = 'comparison.md'
PAGE = 'index.html'
AUDIO = 'audio'
#: What a comparison writes: an --out holding any of these holds a comparison.
WRITTEN = (PAGE, TABLE, LEARNING_CURVES, SPECTROGRAMS, AUDIO)
DEFAULT_EXCERPTS = 2
GRIFFIN_LIM_ITERATIONS = 100
#: Flags of a run that change no result: never a difference worth a row.
NOT_COMPARED = ('preview_interval', 'snapshot_interval', 'snapshots_kept')
#: Hyper-parameters of the training rather than of the optimizer (the rest are its settings).
TRAINING_KEYS = ('optimizer', 'epoch', 'batchsize', 'loss', 'seed', 'excerpts_per_epoch',
                 'validation_excerpts', 'lr_decay_epochs', 'lr_decay_factor',
                 'changed_on_resume') + NOT_COMPARED
#: Numbers of evaluate_utterance that are no measure of quality.
NOT_SHOWN = ('frames',)


class Run:
    """A finished results folder: its summary, log and evaluation metrics (model loaded later)."""

    def __init__(self, folder):
        self.folder = folder
        self.summary = runs.load_summary(folder)
        if not os.path.isfile(os.path.join(folder, 'model.npz')):
            raise runs.RunError('{}: no model.npz (the run did not finish)'.format(folder))
        self.log = runs.load_log(folder)
        if not self.log:
            raise runs.RunError('{}: empty log (no epoch finished)'.format(folder))
        runs.net_class(self.summary['net'])  # a net that cannot be built: refused before the corpus
        self.metrics = report.evaluation_metrics(folder)
        self.latent = latent_measures.read_analysis(folder)  # python -m common.latent analyze
        self.metrics.update(latent_measures.table_metrics(self.latent))
        self.label = self.summary['experiment']
        self.utterance_mse = None


def load_runs(folders):
    """Check every folder before any work; labels made unique with the folder where needed."""
    loaded = [Run(folder) for folder in folders]
    seen = {}
    for run in loaded:
        seen[run.label] = seen.get(run.label, 0) + 1
    for run in loaded:
        if seen[run.label] > 1:
            run.label = '{} ({})'.format(run.label, os.path.normpath(run.folder))
    return loaded


def check_out(out, loaded, force=False):
    """RunError unless ``out`` may receive the comparison: a folder (or none yet) that is no
    run's folder, and holds no comparison unless ``force``."""
    if os.path.lexists(out) and not os.path.isdir(out):
        raise runs.RunError('--out {}: not a folder'.format(out))
    if not os.path.isdir(out):
        return
    if report.is_run_folder(out) or any(
            os.path.realpath(out) == os.path.realpath(run.folder) for run in loaded):
        raise runs.RunError('--out {}: the results folder of a run; choose another --out'
                            .format(out))
    held = [name for name in WRITTEN if os.path.lexists(os.path.join(out, name))]
    if held and not force:
        raise runs.RunError('--out {} already holds a comparison ({}): pass --force to replace '
                            'it, or choose another --out'.format(out, ', '.join(held)))


# -- the figures -----------------------------------------------------------------------------

def plot_learning_curves(path, loaded):
    """MSE per epoch of every run; below it the learning rate, where a log holds it."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator
    with_lr = any(report.lr_changes(run.log) for run in loaded)
    fig, axes = plt.subplots(2 if with_lr else 1, 1, figsize=(8, 6.5 if with_lr else 4.5),
                             sharex=True, squeeze=False,
                             gridspec_kw={'height_ratios': [3, 1.3] if with_lr else [1]})
    ax = axes[0, 0]
    colors = plt.rcParams['axes.prop_cycle'].by_key()['color']
    low, high = float('inf'), 0.0
    for i, run in enumerate(loaded):
        color = colors[i % len(colors)]
        for key, style, what in (('main/loss', '-', 'training'),
                                 ('validation/main/loss', '--', 'validation')):
            points = [(entry['epoch'], entry[key]) for entry in run.log if key in entry]
            if points:
                epochs, values = zip(*points)
                low, high = min(low, min(values)), max(high, max(values))
                ax.plot(epochs, values, style, color=color, marker='.',
                        label='{} {}'.format(run.label, what))
        if with_lr:
            points = [(entry['epoch'], entry['lr']) for entry in run.log
                      if isinstance(entry.get('lr'), (int, float))]
            if points:
                axes[1, 0].step(*zip(*points), where='post', color=color, label=run.label)
    if 0 < low and high > 10 * low:  # losses over a decade or more
        ax.set_yscale('log')
    ax.set_ylabel('mean squared error')
    ax.set_title('learning curves (solid: training, dashed: validation)')
    ax.legend(fontsize='small')
    if with_lr:
        axes[1, 0].set_yscale('log')
        axes[1, 0].set_ylabel('learning rate')
    for row in axes[:, 0]:
        row.grid(True, which='both', alpha=0.3)
        row.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[-1, 0].set_xlabel('epoch')
    fig.tight_layout()
    plot.save_figure(fig, path)


def plot_spectrograms(path, sample, outputs):
    """The input above each run's output: [(label, (T, 256) output)], shared axes and colours."""
    import matplotlib.pyplot as plt
    panels = [('input: {}'.format(sample.title), sample.spectrogram)] + outputs
    frames = sample.spectrogram.shape[0]
    seconds = (frames - 1) * sp.HOP_LENGTH / sp.SAMPLE_RATE + sp.FRAME_LENGTH / sp.SAMPLE_RATE
    bin_hz = sp.SAMPLE_RATE / sp.FRAME_LENGTH
    fig, axes = plt.subplots(len(panels), 1, figsize=(max(6.0, min(12.0, 3.0 * seconds + 2)),
                                                      2.6 * len(panels) + 0.4),
                             sharex=True, squeeze=False, layout='constrained')
    for ax, (title, s) in zip(axes[:, 0], panels):
        image = ax.imshow(numpy.asarray(s).T, origin='lower', aspect='auto', cmap='magma_r',
                          vmin=0, vmax=sp.MAX_VALUE,
                          extent=(0, seconds, 0.5 * bin_hz, (sp.BINS + 0.5) * bin_hz))
        ax.set_title(title, fontsize='medium')
        ax.set_ylabel('frequency [Hz]')
    axes[-1, 0].set_xlabel('time [s]')
    fig.colorbar(image, ax=axes[:, 0].tolist(), label='-ln(|X| / 1024)  (small = loud)')
    plot.save_figure(fig, path)


# -- the utterances everyone hears ---------------------------------------------------------------

class Utterance:
    """A listening row: ``key`` (its audio folder), title, the scaled wave, its spectrogram."""

    def __init__(self, key, title, wave, spectrogram):
        self.key, self.title = key, title
        self.wave = numpy.asarray(wave, dtype=numpy.float32)
        self.spectrogram = numpy.asarray(spectrogram, dtype=numpy.float32).reshape(-1, sp.BINS)

    @property
    def seconds(self):
        return len(self.wave) / sp.SAMPLE_RATE


def listening_utterances(loaded, excerpts, log=None):
    """(utterances, note): the real utterance, then ``excerpts`` validation excerpts of the first
    run's corpus and split (its dataset path and seed); the note says where the excerpts come
    from, or why there are none (a corpus that is not on this machine)."""
    sample = preview.pysptk_sample()
    utterances = [Utterance('a0007', sample.title, sample.wave, sample.spectrogram)]
    if excerpts < 1:
        return utterances, 'no validation excerpts asked (--excerpts 0)'
    first = loaded[0].summary
    path = (first.get('dataset') or {}).get('path')
    seed = (first.get('hyperparameters') or {}).get('seed', 0)
    if not path:
        return utterances, 'no validation excerpts: {} names no corpus'.format(loaded[0].label)
    try:
        corpus = dataset.load_corpus(path, seed=seed, log=log or (lambda message: None))
        validation = dataset.ValidationExcerpts(corpus.validation_waves, excerpts, seed=seed)
    except (dataset.CorpusError, OSError, ValueError) as e:
        return utterances, 'no validation excerpts: {}'.format(' '.join(str(e).split()))
    for i in range(len(validation)):
        file_index, offset = validation.locations[i]
        name = os.path.relpath(corpus.validation_files[int(file_index)], corpus.root)
        utterances.append(Utterance(
            'excerpt-{}'.format(i + 1), 'validation excerpt {}: {} at {:.2f} s'.format(
                i + 1, name, int(offset) / sp.SAMPLE_RATE),
            validation.excerpt(i), validation[i]))
    others = sorted({(run.summary.get('dataset') or {}).get('path') for run in loaded} - {path},
                    key=str)
    note = 'validation excerpts of {} (split and excerpts with seed {}, as {} trained)'.format(
        path, seed, loaded[0].label)
    if others:
        note += '; other runs trained on {}'.format(', '.join(str(p) for p in others))
    return utterances, note


def cell_numbers(numbers, groups):
    """[(name with unit, text, description)] of one utterance's numbers (evaluate_utterance's)
    in ``groups``: '' is the top level (the network's output spectrogram), the others are
    renderings."""
    flat = report.flatten_numbers(numbers)
    shown = []
    for key in measures.order(flat):
        group, _, leaf = key.rpartition('.')
        if leaf in NOT_SHOWN or group not in groups:
            continue
        measure = measures.measure(key)
        shown.append(('{} ({})'.format(measure.name, measure.unit) if measure.unit
                      else measure.name, report.format_number(flat[key], measure.digits),
                      measure.description))
    return shown


def _audio_name(utterance, name):
    return '/'.join((AUDIO, utterance.key, name))


def listen(loaded, utterances, device, out, griffin_lim_iterations=GRIFFIN_LIM_ITERATIONS,
           log=None):
    """Write every wave of the listening table into ``out``/audio and return its rows: one
    dict per utterance with 'cells' (input, input through Griffin-Lim, each run's output), each
    {'src', 'numbers'}; each run's output of the real utterance (for the figure) in
    ``outputs``.  One model in memory at a time; sets each run's utterance_mse."""
    rows = []
    for utterance in utterances:
        os.makedirs(os.path.join(out, AUDIO, utterance.key), exist_ok=True)
        audio.save(os.path.join(out, _audio_name(utterance, 'input.wav')), utterance.wave)
        audio.save(os.path.join(out, _audio_name(utterance, 'input_griffinlim.wav')),
                   sp.to_wave(utterance.spectrogram, n_iter=griffin_lim_iterations))
        rows.append({'title': utterance.title, 'seconds': utterance.seconds, 'cells': [
            {'src': _audio_name(utterance, 'input.wav'), 'numbers': []},
            {'src': _audio_name(utterance, 'input_griffinlim.wav'), 'numbers': None}]})
    outputs = []
    for index, run in enumerate(loaded):
        if log:
            log('{}: listening to {} utterances'.format(run.label, len(utterances)))
        net, _ = runs.load_model(run.folder, device)
        for utterance, row in zip(utterances, rows):
            output = inference.autoencode(net, utterance.spectrogram, device)
            if not numpy.isfinite(output).all():
                raise runs.RunError('{}: the model\'s output has NaN or Inf values (a diverged '
                                    'run?)'.format(run.folder))
            name = 'output-{}-{}.wav'.format(index + 1, run.summary['experiment'])
            audio.save(os.path.join(out, _audio_name(utterance, name)),
                       sp.to_wave(output, n_iter=griffin_lim_iterations))
            numbers = evaluate.evaluate_utterance(net, utterance.wave, device,
                                                  griffin_lim_iterations)
            if row['cells'][1]['numbers'] is None:  # the same for every model
                row['cells'][1]['numbers'] = cell_numbers(numbers, ('griffin_lim_input',))
            row['cells'].append({'src': _audio_name(utterance, name), 'numbers': cell_numbers(
                numbers, ('', measures.HEARD))})
            if utterance is utterances[0]:
                run.utterance_mse = float(numpy.mean((output - utterance.spectrogram) ** 2))
                outputs.append(('output of {} (MSE {})'.format(
                    run.label, report.format_number(run.utterance_mse)), output))
        del net
    return rows, outputs


# -- the summary tables ----------------------------------------------------------------------

def optimizer_text(hyperparameters):
    """'RMSprop: lr 1e-05, alpha 0.99, eps 1e-08, eps_inside_sqrt False'."""
    settings = ['{} {}'.format(key, report.format_value(value))
                for key, value in hyperparameters.items() if key not in TRAINING_KEYS]
    name = report.format_value(hyperparameters.get('optimizer'))
    return '{}: {}'.format(name, ', '.join(settings)) if settings else name


def _differs(values):
    return len({repr(value) for value in values}) > 1


def differences(loaded):
    """[(name, [text per run], description)]: the optimizer and the learning rate as logged,
    then every hyper-parameter, the model, corpus and device where the runs differ."""
    hyper = [run.summary.get('hyperparameters') or {} for run in loaded]
    rows = [
        ('optimizer', [optimizer_text(h) for h in hyper], 'with its settings'),
        ('learning rate as logged', [report.lr_schedule(run.log) or 'not logged'
                                     for run in loaded], 'the \'lr\' of each log entry'),
    ]
    keys = [key for key in measures.HYPERPARAMETERS if any(key in h for h in hyper)]
    keys += [key for h in hyper for key in h if key not in keys]
    keys = list(dict.fromkeys(keys))
    for key in keys:
        values = [h.get(key) for h in hyper]
        if key not in NOT_COMPARED and key != 'optimizer' and _differs(values):
            rows.append((measures.hyperparameter_name(key),
                         [report.format_hyperparameter(key, v) if key in h else 'not set'
                          for v, h in zip(values, hyper)], key))
    model = (('net', lambda s: s['net']),
             ('parameters', lambda s: report.format_number(s['parameters'])),
             ('latent shape', lambda s: report.format_shape(s.get('latent_shape'))),
             ('corpus', lambda s: report.format_value((s.get('dataset') or {}).get('path'))),
             ('device', lambda s: report.format_value(s.get('device'))),
             ('workers', lambda s: report.format_value(
                 (s.get('data_parallel') or {}).get('workers'))))
    for name, get in model:
        values = [get(run.summary) for run in loaded]
        if _differs(values):
            rows.append((name, values, ''))
    return rows


NOT_SUPPORTED = '(n.s.)'
SIGNIFICANCE_NOTE = (
    '{}: the paired t-test over the validation utterances this run and the first both measured '
    '(evaluation.json, per_utterance) does not support a difference from the first run\'s '
    'number (95 %; common/confidence.py).'.format(NOT_SUPPORTED))


def paired_significance(first, other):
    """{metric: :class:`common.confidence.PairedDifference` of other - first} for each number
    that both runs' evaluation.json hold per utterance, paired by file over the utterances both
    measured; {} where either has no per-utterance values (no or an older evaluation.json)."""
    evaluations = [confidence.read_evaluation(run.folder, report.MAX_EVALUATION_BYTES)
                   for run in (first, other)]
    if None in evaluations:
        return {}
    return confidence.compare_evaluations(*evaluations)


def _metric_cell(run, key, measure, difference):
    cell = report.format_number(run.metrics.get(key), measure.digits)
    if difference is not None and difference.supported is False:
        cell += ' ' + NOT_SUPPORTED
    return cell


def results(loaded):
    """[(name, [text per run], description)]: summary.json's results, the MSE on the real
    utterance, then every number of evaluation.json that a run has; rows without any value are
    left out."""
    rows = []
    for key, measure in measures.RESULTS.items():
        values = [run.summary.get(key) for run in loaded]
        if any(value is not None for value in values):
            rows.append((measure.name, [report.format_result(key, v) for v in values],
                         measure.description))
    if any(run.utterance_mse is not None for run in loaded):
        rows.append(('MSE on CMU ARCTIC a0007', [report.format_number(run.utterance_mse)
                                                 for run in loaded],
                     'each model on the same real utterance (spectrograms.png)'))
    keys = []
    for run in loaded:
        keys += [key for key in run.metrics if key not in keys]
    bookkeeping = [key for key in keys if '.' not in key and key in measures.MEASURES
                   and measures.MEASURES[key].better is None]  # utterances, seconds: last
    differences = [paired_significance(loaded[0], run) if index else {}
                   for index, run in enumerate(loaded)]
    for key in (measures.order([key for key in keys if key not in bookkeeping])
                + measures.order(bookkeeping)):
        measure = measures.measure(key)
        rows.append((measures.label(key), [_metric_cell(run, key, measure, difference.get(key))
                                           for run, difference in zip(loaded, differences)],
                     measure.description))
    return rows


def significance_note(tables):
    """SIGNIFICANCE_NOTE when some cell of ``tables`` is marked NOT_SUPPORTED, else ''."""
    marked = any(NOT_SUPPORTED in cell for _, rows in tables for _, cells, _ in rows
                 for cell in cells)
    return SIGNIFICANCE_NOTE if marked else ''


def summary_tables(loaded):
    """[(part, rows)]: 'what differs' and 'results' (see :func:`differences`, :func:`results`)."""
    return [('What differs', differences(loaded)), ('Results', results(loaded))]


def write_table(out, loaded, tables, utterances_note):
    text = report.render_template('comparison.md', runs=loaded, tables=tables,
                                  note=utterances_note, spectrograms=SPECTROGRAMS,
                                  significance=significance_note(tables))
    with files.atomic_write(os.path.join(out, TABLE), 'w', encoding='utf-8') as f:
        f.write(text)
    return text


def _remove_stale_audio(out, keep):
    """With --force: the previous comparison's .wav files that this one does not write."""
    folder = os.path.join(out, AUDIO)
    if not os.path.isdir(folder) or os.path.islink(folder):
        return
    for root, dirs, names in os.walk(folder, topdown=False):
        for name in names:
            path = os.path.join(root, name)
            if name.endswith('.wav') and os.path.relpath(path, out).replace(os.sep, '/') \
                    not in keep:
                os.remove(path)
        if root != folder and not os.listdir(root):
            os.rmdir(root)


def compare(folders, out, device=None, force=False, excerpts=DEFAULT_EXCERPTS,
            griffin_lim_iterations=GRIFFIN_LIM_ITERATIONS, log=None):
    """Write the listening page, the figures and the table into ``out``; return the table."""
    loaded = load_runs(folders)
    check_out(out, loaded, force)
    device = device or chainer.get_device('@numpy')
    utterances, note = listening_utterances(loaded, excerpts, log)
    os.makedirs(out, exist_ok=True)
    rows, outputs = listen(loaded, utterances, device, out, griffin_lim_iterations, log)
    _remove_stale_audio(out, {cell['src'] for row in rows for cell in row['cells']})
    plot_learning_curves(os.path.join(out, LEARNING_CURVES), loaded)
    sample = utterances[0]
    plot_spectrograms(os.path.join(out, SPECTROGRAMS),
                      preview.PreviewSample('', sample.title, sample.wave, sample.spectrogram),
                      outputs)
    analysed = [(run.label, run.latent) for run in loaded if run.latent]
    if analysed:  # the runs' latent spectra and truncation curves on shared axes
        latent_analysis.plot_comparison(os.path.join(out, LATENT), analysed)
    elif os.path.lexists(os.path.join(out, LATENT)):
        os.remove(os.path.join(out, LATENT))  # an older comparison's
    tables = summary_tables(loaded)
    table = write_table(out, loaded, tables, note)
    page = report.render_template(
        'compare.html', title='Comparison: {}'.format(', '.join(run.label for run in loaded)),
        runs=loaded, tables=tables, rows=rows, note=note, learning_curves=LEARNING_CURVES,
        significance=significance_note(tables), latent=LATENT if analysed else None,
        spectrograms=SPECTROGRAMS, table=TABLE, sample=sample,
        with_lr=any(report.lr_changes(run.log) for run in loaded),
        griffin_lim_iterations=griffin_lim_iterations,
        folders=[os.path.normpath(run.folder) for run in loaded], written=report._now())
    report._write(os.path.join(out, PAGE), page)
    return table


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog='python -m common.compare',
        description='Compare finished results folders: a listening page (index.html) with the '
                    'same utterances through every run, learning curves, each run\'s output '
                    'spectrogram for the same input, and a table of what differs and the '
                    'results.')
    parser.add_argument('folders', nargs='+', metavar='FOLDER', help='finished results folders')
    parser.add_argument('--out', '-o', default=os.path.join('results', 'compare'),
                        help='folder for the page, figures, audio and table '
                             '(default: %(default)s)')
    parser.add_argument('--force', action='store_true',
                        help='replace the comparison that --out already holds')
    parser.add_argument('--excerpts', type=int, default=DEFAULT_EXCERPTS, metavar='N',
                        help='validation excerpts to listen to besides the real utterance '
                             '(default: %(default)s)')
    parser.add_argument('--gpu', '-g', type=int, default=-1,
                        help='GPU id to run the models on (negative value: CPU)')
    args = parser.parse_args(argv)
    if args.excerpts < 0:
        parser.error('--excerpts must be >= 0')
    try:
        device = cli.get_device(args.gpu)
        table = compare(args.folders, args.out, device, args.force, args.excerpts,
                        log=lambda message: print(message, file=sys.stderr))
    except (cli.UsageError, runs.RunError, OSError) as e:
        print('{}: error: {}'.format(parser.prog, e), file=sys.stderr)
        return 2
    print(table, end='')
    print('written: {}'.format(', '.join(os.path.join(args.out, name)
                                         for name in (PAGE, LEARNING_CURVES, SPECTROGRAMS,
                                                      TABLE, AUDIO + '/'))))
    return 0


if __name__ == '__main__':
    sys.exit(main())
