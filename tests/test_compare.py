"""python -m common.compare: learning curves, outputs for one input, and the table."""
import json
import shutil
import subprocess
import sys

import numpy
import pytest

import common  # noqa: F401
import matplotlib.image

from conftest import REPOSITORY
from common import compare, inference, preview, report, runs


def run_compare(*args):
    return subprocess.run([sys.executable, '-m', 'common.compare'] + [str(a) for a in args],
                          capture_output=True, text=True, timeout=600, cwd=REPOSITORY)


def table_lines(text):
    return [line for line in text.splitlines() if line.startswith('|')]


def cells(line):
    return [cell.strip() for cell in line.strip().strip('|').split('|')]


def copy_run(source, target):
    """A copy of a finished results folder without its snapshots."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns('snapshot_*'))
    return target


def test_two_experiments_compare_into_figures_and_a_table(bc7db4a2_run, c9335bce_run, tmp_path):
    out = tmp_path / 'compare'
    result = run_compare(bc7db4a2_run, c9335bce_run, '--out', out)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = table_lines(result.stdout)
    assert len(lines) == 4  # header, alignment, two runs
    header = cells(lines[0])
    assert header == list(compare.COLUMNS)
    rows = {cells(line)[1]: dict(zip(header, cells(line))) for line in lines[2:]}
    assert rows['bc7db4a2']['parameters'] == '102,054,657'
    assert rows['c9335bce']['parameters'] == '3,323,649'
    assert rows['bc7db4a2']['latent shape'] == '4096 x 16 x 1'
    assert rows['c9335bce']['latent shape'] == '1024 x 16 x 9'
    for row in rows.values():
        assert row['minibatch'] == '2' and row['epochs'] == '2'
        for column in ('final training MSE', 'final validation MSE', 'utterance MSE'):
            assert numpy.isfinite(float(row[column])), column
    with open(bc7db4a2_run / 'summary.json') as f:
        summary = json.load(f)
    assert rows['bc7db4a2']['final validation MSE'] == report.format_number(
        summary['final_validation_mse'])

    assert table_lines((out / compare.TABLE).read_text()) == lines
    curves = matplotlib.image.imread(str(out / compare.LEARNING_CURVES))
    spectrograms = matplotlib.image.imread(str(out / compare.SPECTROGRAMS))
    assert curves.shape[1] > 400 and curves.std() > 0.01
    # Three panels (input and two outputs): taller than wide is not required, but tall.
    assert spectrograms.shape[0] > 600 and spectrograms.std() > 0.01


def test_each_output_is_the_model_on_the_same_utterance(c9335bce_run, tmp_path):
    loaded = compare.load_runs([str(c9335bce_run)])
    sample = preview.pysptk_sample()
    outputs = compare.compute_outputs(loaded, sample, None)
    net, _ = runs.load_model(str(c9335bce_run))
    expected = inference.autoencode(net, sample.spectrogram)
    numpy.testing.assert_allclose(outputs[0][1], expected, rtol=1e-5, atol=1e-5)
    assert loaded[0].utterance_mse == pytest.approx(
        float(numpy.mean((expected - sample.spectrogram) ** 2)), rel=1e-5)


def test_evaluation_metrics_join_the_table_flattened(c9335bce_run, tmp_path, capsys):
    evaluated = copy_run(c9335bce_run, tmp_path / 'evaluated')
    with open(evaluated / 'evaluation.json', 'w') as f:
        json.dump({'mcd_db': 7.25, 'pesq': {'mean': 1.5, 'per_file': [1, 2]},
                   'files': 3, 'griffin_lim': {'iterations': 100, 'method': 'fast'},
                   'ok': True, 'note': 'text'}, f)
    out = tmp_path / 'out'
    assert compare.main([str(evaluated), str(c9335bce_run), '--out', str(out)]) == 0
    lines = table_lines(capsys.readouterr().out)
    header = cells(lines[0])
    assert header == list(compare.COLUMNS) + [
        'mcd_db', 'pesq.mean', 'files', 'griffin_lim.iterations']
    first, second = (dict(zip(header, cells(line))) for line in lines[2:])
    assert (first['mcd_db'], first['pesq.mean'], first['files']) == ('7.25', '1.5', '3')
    assert second['mcd_db'] == '-'  # no evaluation.json there
    # The same experiment twice: labels name the folders.
    assert first['experiment'] == second['experiment'] == 'c9335bce'
    labels = [run.label for run in compare.load_runs([str(evaluated), str(c9335bce_run)])]
    assert len(set(labels)) == 2 and str(tmp_path / 'evaluated') in labels[0]


@pytest.mark.parametrize('case', ['missing', 'empty', 'no_model', 'running'])
def test_a_folder_that_is_not_a_finished_run_is_refused_in_one_line(case, c9335bce_run,
                                                                    tmp_path):
    folder = tmp_path / case
    if case == 'empty':
        folder.mkdir()
    elif case == 'no_model':
        copy_run(c9335bce_run, folder)
        (folder / 'model.npz').unlink()
    elif case == 'running':  # a run still in progress: log and snapshots, no summary.json yet
        folder.mkdir()
        shutil.copy(c9335bce_run / 'log', folder / 'log')
    out = tmp_path / 'out'
    result = run_compare(c9335bce_run, folder, '--out', out)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and 'Traceback' not in result.stderr, result.stderr
    assert str(folder) in lines[0] and lines[0].startswith('python -m common.compare: error:')
    assert not out.exists()  # checked before any work


def test_flatten_numbers_and_formats():
    assert report.flatten_numbers({'a': 1, 'b': {'c': 2.5, 'd': {'e': 3}}, 'f': [1], 'g': True,
                                   'h': 'x'}) == {'a': 1, 'b.c': 2.5, 'b.d.e': 3}
    assert report.flatten_numbers([1, 2]) == {}
    assert report.format_duration(1.1412) == '1.14 h'
    assert report.format_duration(0.05) == '3.0 min'
    assert report.format_duration(0.004) == '14 s'
    assert report.format_number(0.020512) == '0.02051'
    assert report.format_number(102054657) == '102,054,657'
    assert report.format_number(None) == '-'
    table = compare.markdown_table(['run', 'x'], [['a|b', '1']])
    assert table.splitlines() == ['| run | x |', '|---|---:|', '| a\\|b | 1 |']


def test_differences_the_utterances_do_not_support_are_marked(c9335bce_run, tmp_path, capsys):
    """A real evaluation (3 validation utterances) in three runs: the same run again is "no
    difference" in every number; a run whose STOI is 0.05 higher on every utterance differs
    there, and only there."""
    from common import evaluate
    first = copy_run(c9335bce_run, tmp_path / 'first')
    evaluate.evaluate(str(first), max_files=3, griffin_lim_iterations=2, f0_method='dio',
                      log=lambda line: None)
    same = copy_run(first, tmp_path / 'same')
    better = copy_run(first, tmp_path / 'better')
    with open(better / 'evaluation.json') as f:
        evaluation = json.load(f)
    key = 'autoencoder_true_phase'
    evaluation[key]['stoi'] += 0.05
    evaluation['per_utterance'][key]['stoi'] = [
        value + 0.05 for value in evaluation['per_utterance'][key]['stoi']]
    with open(better / 'evaluation.json', 'w') as f:
        json.dump(evaluation, f)

    differences = compare.paired_significance(*compare.load_runs([str(first), str(same)]))
    assert 'autoencoder_true_phase.pesq_nb' in differences or 'pesq' not in sys.modules
    assert {'spectrogram_mse', 'griffin_lim_input.mcd_db', key + '.stoi'} <= set(differences)
    for name, difference in differences.items():
        if difference.n:  # 0: undefined in every utterance (no voiced frame in the output)
            assert difference.n == 3 and difference.verdict() == 'no difference shown', name

    out = tmp_path / 'out'
    assert compare.main([str(first), str(same), str(better), '--out', str(out)]) == 0
    printed = capsys.readouterr().out
    lines = table_lines(printed)
    header = cells(lines[0])
    rows = [dict(zip(header, cells(line))) for line in lines[2:]]
    measured = [name for name in header if name.endswith('.stoi') or name.endswith('_db')]
    assert len(measured) >= 7
    for name in measured:
        assert compare.NOT_SUPPORTED not in rows[0][name]  # the first run: the baseline
        assert rows[1][name].endswith(compare.NOT_SUPPORTED), name  # the same numbers again
        if name == key + '.stoi':
            assert compare.NOT_SUPPORTED not in rows[2][name]  # higher on every utterance
        else:
            assert rows[2][name].endswith(compare.NOT_SUPPORTED), name
    assert compare.SIGNIFICANCE_NOTE in printed
    assert compare.SIGNIFICANCE_NOTE in (out / compare.TABLE).read_text()
