"""python -m common.compare: the listening page, learning curves, spectrograms and the tables."""
import json
import shutil
import subprocess
import sys

import numpy
import pytest

import common  # noqa: F401
import matplotlib.image
import soundfile

from conftest import REPOSITORY, TINY_RUN, run_experiment
from common import audio, compare, inference, preview, report, runs
from common import spectrogram as sp
from test_report import Page, words

# Whole comparisons of trained runs: slow, so left out of the quick check
# (README.md: pytest -m "not slow").
pytestmark = pytest.mark.slow


def run_compare(*args):
    return subprocess.run([sys.executable, '-m', 'common.compare'] + [str(a) for a in args],
                          capture_output=True, text=True, timeout=600, cwd=REPOSITORY)


def tables(text):
    """{part: (header, {row name: cells})} of comparison.md's Markdown tables."""
    found, part = {}, None
    for line in text.splitlines():
        if line.startswith('## '):
            part = line[3:]
        elif line.startswith('|') and part:
            cells = [cell.strip() for cell in line.strip().strip('|').split(' | ')]
            if part not in found:
                found[part] = (cells[1:], {})
            elif not set(line) <= set('|-: '):
                found[part][1][cells[0]] = cells[1:]
    return found


def copy_run(source, target):
    """A copy of a finished results folder without its snapshots."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns('snapshot_*'))
    return target


@pytest.fixture(scope='module')
def other_c9335bce_run(tmp_path_factory):
    """A second tiny c9335bce run that differs in minibatch and seed."""
    out = tmp_path_factory.mktemp('other') / 'c9335bce'
    result = run_experiment('c9335bce', *TINY_RUN, '--batchsize', '4', '--seed', '1',
                            '--snapshots-kept', '0', '--out', str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def test_two_experiments_compare_into_a_listening_page_figures_and_tables(
        bc7db4a2_run, c9335bce_run, tmp_path):
    out = tmp_path / 'compare'
    result = run_compare(bc7db4a2_run, c9335bce_run, '--out', out, '--excerpts', '1')
    assert result.returncode == 0, result.stderr[-3000:]
    found = tables(result.stdout)
    assert list(found) == ['What differs', 'Results']
    header, differs = found['What differs']
    assert header == ['bc7db4a2', 'c9335bce']
    # Always the optimizer and the schedule; the rest only where the runs differ.
    assert list(differs) == ['optimizer', 'learning rate as logged', 'net', 'parameters',
                             'latent shape']
    assert differs['optimizer'][0] == differs['optimizer'][1] == \
        'RMSprop: lr 1e-05, alpha 0.99, eps 1e-08, eps_inside_sqrt False'
    assert differs['parameters'] == ['102,054,657', '3,323,649']
    assert differs['latent shape'] == ['4096 x 16 x 1', '1024 x 16 x 9']
    header, results = found['Results']
    assert list(results) == ['epochs', 'iterations', 'training time', 'final training MSE',
                             'final validation MSE', 'MSE on CMU ARCTIC a0007']
    assert results['epochs'] == ['2', '2'] and results['iterations'] == ['4', '4']
    for row in ('final training MSE', 'final validation MSE', 'MSE on CMU ARCTIC a0007'):
        assert all(numpy.isfinite(float(cell)) for cell in results[row]), row
    with open(bc7db4a2_run / 'summary.json') as f:
        summary = json.load(f)
    assert results['final validation MSE'][0] == report.format_number(
        summary['final_validation_mse'])
    # comparison.md is what was printed.
    assert tables((out / compare.TABLE).read_text()) == found

    curves = matplotlib.image.imread(str(out / compare.LEARNING_CURVES))
    spectrograms = matplotlib.image.imread(str(out / compare.SPECTROGRAMS))
    assert curves.shape[1] > 400 and curves.std() > 0.01
    assert spectrograms.shape[0] > 600 and spectrograms.std() > 0.01

    # The listening page: the real utterance and one excerpt, each through every column.
    text = (out / compare.PAGE).read_text(encoding='utf-8')
    page = Page(text)
    assert page.sections == ['summary', 'listening', 'learning-curves', 'spectrograms']
    assert sorted(page.images) == [compare.LEARNING_CURVES, compare.SPECTROGRAMS]
    assert page.audio == [
        'audio/{}/{}'.format(key, name) for key in ('a0007', 'excerpt-1') for name in (
            'input.wav', 'input_griffinlim.wav', 'output-1-bc7db4a2.wav',
            'output-2-c9335bce.wav')]
    assert set(page.audio_preload) == {(True, 'metadata')}
    lengths = {}
    for src in page.audio:
        wave, rate = soundfile.read(str(out / src))
        assert rate == sp.SAMPLE_RATE and numpy.abs(wave).max() > 0, src
        lengths.setdefault(src.split('/')[1], set()).add(len(wave) // sp.HOP_LENGTH)
    assert lengths['excerpt-1'] == {sp.wave_length(sp.FRAMES) // sp.HOP_LENGTH}
    said = words(text)
    assert 'CMU ARCTIC a0007 (pysptk) (4.00 s)' in said
    assert 'validation excerpt 1: ' in said and '(1.06 s)' in said
    for name in ('spectrogram MSE', 'MCD (dB)', 'LSD (dB)', 'spectral convergence'):
        assert said.count(name) >= 4, name  # in each run's cell of both rows
    assert 'griffin_lim_input' not in said and 'mcd_db' not in said


def test_each_output_is_the_model_on_the_same_utterance(c9335bce_run, tmp_path):
    loaded = compare.load_runs([str(c9335bce_run)])
    sample = preview.pysptk_sample()
    utterance = compare.Utterance('a0007', sample.title, sample.wave, sample.spectrogram)
    rows, outputs = compare.listen(loaded, [utterance], chainer_cpu(), str(tmp_path),
                                   griffin_lim_iterations=8)
    net, _ = runs.load_model(str(c9335bce_run))
    expected = inference.autoencode(net, sample.spectrogram)
    numpy.testing.assert_allclose(outputs[0][1], expected, rtol=1e-5, atol=1e-5)
    assert loaded[0].utterance_mse == pytest.approx(
        float(numpy.mean((expected - sample.spectrogram) ** 2)), rel=1e-5)
    heard, _ = soundfile.read(str(tmp_path / rows[0]['cells'][2]['src']))
    # 16-bit WAV, levelled as every preview is (common.audio.save): lowered as a whole to fit
    # full scale, never clipped
    levelled, _ = audio.fit_to_full_scale(sp.to_wave(expected, n_iter=8))
    numpy.testing.assert_allclose(heard, levelled, atol=1e-4)
    numbers = dict((name, value) for name, value, _ in rows[0]['cells'][2]['numbers'])
    assert numbers['spectrogram MSE'] == report.format_number(loaded[0].utterance_mse)


def chainer_cpu():
    import chainer
    return chainer.get_device('@numpy')


def with_lr(folder, rates):
    """The run's log as it reads once training logs the learning rate ('lr' per entry)."""
    log = json.loads((folder / 'log').read_text())
    for entry, lr in zip(log, rates):
        entry['lr'] = lr
    (folder / 'log').write_text(json.dumps(log))
    return folder


def test_what_differs_names_every_differing_hyperparameter_and_the_schedule(
        c9335bce_run, other_c9335bce_run, tmp_path, capsys):
    first = with_lr(copy_run(c9335bce_run, tmp_path / 'constant'), [1e-5, 1e-5])
    second = with_lr(copy_run(other_c9335bce_run, tmp_path / 'decayed'),
                     [1e-5, 1e-5 * 10 ** -0.5])
    with open(first / 'evaluation.json', 'w') as f:
        json.dump({'files': 3, 'spectrogram_mse': 30.5,
                   'autoencoder_griffin_lim': {'mcd_db': 7.25, 'stoi': 0.5},
                   'griffin_lim': {'method': 'fast'}, 'ok': True, 'note': 'text'}, f)
    out = tmp_path / 'out'
    assert compare.main([str(first), str(second), '--out', str(out), '--excerpts', '0']) == 0
    found = tables(capsys.readouterr().out)
    header, differs = found['What differs']
    # The same experiment twice: labels name the folders.
    assert header == ['c9335bce ({})'.format(first), 'c9335bce ({})'.format(second)]
    assert differs['learning rate as logged'] == [
        '1e-05 throughout (epochs 1-2)', '1e-05 from epoch 1, 3.162e-06 from epoch 2']
    assert differs['minibatch'] == ['2', '4'] and differs['seed'] == ['0', '1']
    assert list(differs) == ['optimizer', 'learning rate as logged', 'minibatch', 'seed']
    _, results = found['Results']
    # Evaluation numbers by name and unit, '-' where a run has none; no row without a value.
    assert results['MCD, output through Griffin-Lim (dB)'] == ['7.25', '-']
    assert results['spectrogram MSE'] == ['30.5', '-']
    assert results['utterances evaluated'] == ['3', '-']
    names = list(results)  # quality first, what was measured on after it
    assert names.index('MCD, output through Griffin-Lim (dB)') < names.index(
        'utterances evaluated') == len(names) - 1
    assert results['STOI, output through Griffin-Lim'] == ['0.5', '-']
    assert results['iterations'] == ['4', '2']
    assert 'peak GPU memory' not in results
    for part in found.values():
        for name, cells in part[1].items():
            assert set(cells) != {'-'}, name
    assert 'MSE on CMU ARCTIC a0007' in results
    text = words((out / compare.PAGE).read_text(encoding='utf-8'))
    assert '1e-05 from epoch 1, 3.162e-06 from epoch 2' in text


def test_an_existing_comparison_is_replaced_only_with_force(c9335bce_run, tmp_path):
    out = tmp_path / 'compare'
    first = run_compare(c9335bce_run, '--out', out, '--excerpts', '1')
    assert first.returncode == 0, first.stderr[-3000:]
    before = {path: path.stat().st_mtime_ns for path in out.rglob('*')}
    refused = run_compare(c9335bce_run, '--out', out, '--excerpts', '0')
    assert refused.returncode == 2
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and 'Traceback' not in refused.stderr
    assert 'already holds a comparison' in lines[0] and '--force' in lines[0]
    assert {path: path.stat().st_mtime_ns for path in out.rglob('*')} == before
    replaced = run_compare(c9335bce_run, '--out', out, '--excerpts', '0', '--force')
    assert replaced.returncode == 0, replaced.stderr[-3000:]
    # The new comparison alone: the excerpt of the old one is gone.
    assert sorted(p.name for p in (out / compare.AUDIO).iterdir()) == ['a0007']
    assert Page((out / compare.PAGE).read_text()).audio == [
        'audio/a0007/input.wav', 'audio/a0007/input_griffinlim.wav',
        'audio/a0007/output-1-c9335bce.wav']


def test_the_folder_of_a_run_is_no_place_for_a_comparison(c9335bce_run, tmp_path):
    folder = copy_run(c9335bce_run, tmp_path / 'run')
    result = run_compare(c9335bce_run, '--out', folder, '--force')
    assert result.returncode == 2 and 'the results folder of a run' in result.stderr
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        p.name for p in c9335bce_run.iterdir() if not p.name.startswith('snapshot_'))


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
    assert report.markdown_cell('a|b\nc') == 'a\\|b c'


def test_differences_the_utterances_do_not_support_are_marked(c9335bce_run, tmp_path):
    """A real evaluation (3 validation utterances) in three runs: the same run again is "no
    difference" in every number; a run whose STOI is 0.05 higher on every utterance differs
    there, and only there."""
    from common import evaluate, measures
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
    assert {'spectrogram_mse', 'griffin_lim_input.mcd_db', key + '.stoi'} <= set(differences)
    for name, difference in differences.items():
        if difference.n:  # 0: undefined in every utterance (no voiced frame in the output)
            assert difference.n == 3 and difference.verdict() == 'no difference shown', name

    out = tmp_path / 'out'
    assert compare.main([str(first), str(same), str(better), '--out', str(out)]) == 0
    text = (out / compare.TABLE).read_text()
    _, results = tables(text)['Results']
    stoi = measures.label(key + '.stoi')
    measured = [name for name in results if 'STOI' in name or '(dB)' in name]
    assert stoi in measured and len(measured) >= 7
    for name in measured:
        cells = results[name]
        assert compare.NOT_SUPPORTED not in cells[0]  # the first run: the baseline
        assert cells[1].endswith(compare.NOT_SUPPORTED), name  # the same numbers again
        if name == stoi:
            assert compare.NOT_SUPPORTED not in cells[2]  # higher on every utterance
        else:
            assert cells[2].endswith(compare.NOT_SUPPORTED), name
    assert compare.SIGNIFICANCE_NOTE in ' '.join(text.split())
    assert compare.NOT_SUPPORTED in (out / compare.PAGE).read_text()
