"""Compare finished results folders: learning curves, outputs for one input, and a table.

    python -m common.compare results/bc7db4a2 results/c9335bce [more folders] --out results/compare

writes into ``--out``:

- ``learning_curves.png``: every run's training (solid) and validation (dashed) MSE per epoch;
- ``spectrograms.png``: one input -- the real recorded utterance that pysptk ships (CMU ARCTIC
  a0007), the same for every run whatever its corpus -- above each run's output for it;
- ``comparison.md``: the table, also printed: experiment, parameters, latent shape, minibatch,
  epochs, training time, final training and validation MSE, the MSE of the output above, and
  the numeric entries of each folder's ``evaluation.json`` (``common.evaluate``) when there is one.

Every folder must hold a finished run (summary.json, log, model.npz); otherwise nothing is
written and the command says which folder and why (exit status 2).
"""
import argparse
import os
import sys

import numpy

import common  # noqa: F401
import chainer

from common import cli, inference, preview, report, runs
from common import latent_analysis, latent_measures  # python -m common.latent analyze
from common import plot  # noqa: F401  (matplotlib on its Agg backend, files only)
from common import spectrogram as sp
from common import files

LEARNING_CURVES = 'learning_curves.png'
SPECTROGRAMS = 'spectrograms.png'
LATENT = 'latent.png'
TABLE = 'comparison.md'
COLUMNS = ('run', 'experiment', 'parameters', 'latent shape', 'minibatch', 'epochs',
           'training time', 'final training MSE', 'final validation MSE', 'utterance MSE')


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


def plot_learning_curves(path, loaded):
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator
    fig, ax = plt.subplots(figsize=(8, 4.5))
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
    if 0 < low and high > 10 * low:  # losses over a decade or more
        ax.set_yscale('log')
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel('epoch')
    ax.set_ylabel('mean squared error')
    ax.set_title('learning curves (solid: training, dashed: validation)')
    ax.grid(True, which='both', alpha=0.3)
    ax.legend(fontsize='small')
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


def compute_outputs(loaded, sample, device):
    """Each run's output for ``sample`` (one model in memory at a time); sets utterance_mse."""
    outputs = []
    for run in loaded:
        net, _ = runs.load_model(run.folder, device)
        output = inference.autoencode(net, sample.spectrogram, device)
        del net
        run.utterance_mse = float(numpy.mean((output - sample.spectrogram) ** 2))
        outputs.append(('output of {} (MSE {})'.format(
            run.label, report.format_number(run.utterance_mse)), output))
    return outputs


def table_rows(loaded):
    """(header, rows) of the comparison: COLUMNS, then the union of evaluation metrics."""
    metric_names = []
    for run in loaded:
        metric_names += [name for name in run.metrics if name not in metric_names]
    rows = []
    for run in loaded:
        s = run.summary
        rows.append([
            os.path.normpath(run.folder), s['experiment'],
            report.format_number(s['parameters']),
            report.format_shape(s.get('latent_shape')),
            report.format_number(s.get('hyperparameters', {}).get('batchsize')),
            report.format_number(s.get('epochs_completed')),
            report.format_duration(s.get('training_hours')),
            report.format_number(s.get('final_training_mse')),
            report.format_number(s.get('final_validation_mse')),
            report.format_number(run.utterance_mse),
        ] + [report.format_number(run.metrics.get(name)) for name in metric_names])
    return list(COLUMNS) + metric_names, rows


def markdown_table(header, rows):
    def escape(cell):
        return str(cell).replace('|', '\\|')
    text = ('run', 'experiment', 'latent shape')
    right = {i for i, name in enumerate(header) if name not in text}  # numbers
    lines = ['| ' + ' | '.join(escape(h) for h in header) + ' |',
             '|' + '|'.join('---:' if i in right else '---' for i in range(len(header))) + '|']
    lines += ['| ' + ' | '.join(escape(c) for c in row) + ' |' for row in rows]
    return '\n'.join(lines) + '\n'


def compare(folders, out, device=None):
    """Write the two figures and the table into ``out``; return the table (Markdown)."""
    loaded = load_runs(folders)
    device = device or chainer.get_device('@numpy')
    sample = preview.pysptk_sample()
    outputs = compute_outputs(loaded, sample, device)
    os.makedirs(out, exist_ok=True)
    plot_learning_curves(os.path.join(out, LEARNING_CURVES), loaded)
    plot_spectrograms(os.path.join(out, SPECTROGRAMS), sample, outputs)
    analysed = [(run.label, run.latent) for run in loaded if run.latent]
    if analysed:  # the runs' latent spectra and truncation curves on shared axes
        latent_analysis.plot_comparison(os.path.join(out, LATENT), analysed)
    table = markdown_table(*table_rows(loaded))
    with files.atomic_write(os.path.join(out, TABLE), 'w') as f:
        f.write('# Comparison\n\n')
        f.write('utterance MSE: each model on the same input, {} ({}).\n\n'.format(
            sample.title, SPECTROGRAMS))
        f.write(table)
        if analysed:
            f.write('\n{}: the latent spectra and truncation curves of {} (python -m common.'
                    'latent analyze).\n'.format(LATENT, ', '.join(name for name, _ in analysed)))
    return table


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog='python -m common.compare',
        description='Compare finished results folders: learning curves, each run\'s output '
                    'spectrogram for the same input, and a table.')
    parser.add_argument('folders', nargs='+', metavar='FOLDER', help='finished results folders')
    parser.add_argument('--out', '-o', default=os.path.join('results', 'compare'),
                        help='folder for the figures and the table (default: %(default)s)')
    parser.add_argument('--gpu', '-g', type=int, default=-1,
                        help='GPU id to run the models on (negative value: CPU)')
    args = parser.parse_args(argv)
    try:
        device = cli.get_device(args.gpu)
        table = compare(args.folders, args.out, device)
    except (cli.UsageError, runs.RunError, OSError) as e:
        print('{}: error: {}'.format(parser.prog, e), file=sys.stderr)
        return 2
    print(table, end='')
    print('written: {}'.format(', '.join(os.path.join(args.out, name)
                                         for name in (LEARNING_CURVES, SPECTROGRAMS, TABLE))))
    return 0


if __name__ == '__main__':
    sys.exit(main())
