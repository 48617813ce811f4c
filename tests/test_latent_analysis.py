"""python -m common.latent analyze: the measures on latents of known structure, and a tiny run
through the whole command."""
import json
import math
import os
import shutil
import subprocess
import sys

import numpy
import pytest

import common  # noqa: F401
import matplotlib.image

from conftest import REPOSITORY
from common import compare, evaluate, inference, latent, latent_analysis, reconstruct, runs
from common import latent_measures as measures
from common import spectrogram as sp

KEYS = ('active_units', 'units', 'saturated_fraction', 'components_90', 'components_99',
        'effective_rank', 'participation_ratio', 'truncation', 'k_within_0_1_db',
        'speaker_probe')


def low_rank(frames, units, rank, seed=0, scales=None):
    """``frames`` points of ``units`` dimensions on a random ``rank``-dimensional subspace (a
    random offset, orthonormal directions, coordinates of variance ``scales``, default 1)."""
    rng = numpy.random.default_rng(seed)
    basis, _ = numpy.linalg.qr(rng.normal(size=(units, rank)))
    scales = numpy.ones(rank) if scales is None else numpy.asarray(scales)
    coordinates = rng.normal(size=(frames, rank))
    orthonormal, _ = numpy.linalg.qr(coordinates - coordinates.mean(axis=0))
    coordinates = orthonormal * numpy.sqrt(frames * scales)  # uncorrelated, the variances asked
    return (0.3 * rng.uniform(-1, 1, units) + coordinates @ basis.T).astype(numpy.float32)


def eigenvalues(statistics):
    values, _ = statistics.decompose()
    return values


# -- spectrum: known rank -------------------------------------------------------------------

@pytest.mark.parametrize('route, frames', [('gram', 40), ('covariance', 300)])
def test_latents_of_known_rank_give_that_rank(route, frames):
    units, rank = 64, 5
    data = low_rank(frames, units, rank, scales=[0.04] * rank)
    statistics = measures.FrameStatistics(units)
    for start in range(0, frames, 37):  # in chunks, as utterances come
        statistics.add(data[start:start + 37])
    assert (statistics.covariance_sum is None) == (route == 'gram')
    values, components = statistics.decompose()
    assert measures.numerical_rank(values) == rank
    expected = numpy.linalg.eigvalsh(numpy.cov(data.astype(numpy.float64).T, bias=True))[::-1]
    numpy.testing.assert_allclose(values[:rank], expected[:rank], rtol=1e-5)
    found = measures.spectrum_measures(values)
    # equal variances: every measure says five
    assert found['components_90'] == 5 and found['components_99'] == 5
    assert found['effective_rank'] == pytest.approx(rank, rel=1e-5)
    assert found['participation_ratio'] == pytest.approx(rank, rel=1e-5)


def test_the_measures_of_an_uneven_spectrum():
    values = [8, 1, 0.5, 0.25, 0.25, 0, -1e-17]  # sums to 10
    found = measures.spectrum_measures(values)
    assert found['components_90'] == 2  # 8 + 1 of 10 reaches 90 %
    assert found['components_99'] == 5
    assert found['participation_ratio'] == pytest.approx(100 / (64 + 1 + 0.25 + 0.125))
    singular = numpy.sqrt([8, 1, 0.5, 0.25, 0.25])
    p = singular / singular.sum()
    assert found['effective_rank'] == pytest.approx(math.exp(-(p * numpy.log(p)).sum()))
    assert 1 < found['participation_ratio'] < found['effective_rank'] < 5


def test_whole_blocks_of_known_rank():
    blocks = low_rank(30, 2000, 7, seed=1).reshape(30, 20, 10, 10)
    found = measures.block_spectrum(blocks, seen=100)
    assert (found['blocks'], found['blocks_seen'], found['values']) == (30, 100, 2000)
    assert found['components_99'] == 7 and found['effective_rank'] == pytest.approx(7, rel=1e-4)
    assert found['scree']['k'][-1] == 7 and found['scree']['explained'][-1] == pytest.approx(1)


def test_activity_counts_units_over_the_variance_threshold_and_saturated_values():
    rng = numpy.random.default_rng(2)
    frames = numpy.zeros((1000, 4), dtype=numpy.float32)
    frames[:, 0] = rng.normal(0, math.sqrt(0.02), 1000)  # active
    frames[:, 1] = rng.normal(0.5, math.sqrt(0.005), 1000)  # inactive
    frames[:, 2] = 0.995  # saturated, constant
    frames[:500, 3], frames[500:, 3] = -1, 1  # saturated, variance 1
    statistics = measures.FrameStatistics(4)
    statistics.add(frames[:300])
    statistics.add(frames[300:])
    found = statistics.activity()
    assert (found['units'], found['active_units'], found['frames']) == (4, 2, 1000)
    assert found['saturated_fraction'] == pytest.approx(0.5)
    numpy.testing.assert_allclose(statistics.variances, frames.astype(float).var(axis=0),
                                  rtol=1e-6, atol=1e-12)


def test_the_reservoir_is_a_uniform_seeded_sample():
    counts = numpy.zeros(100)
    for seed in range(400):
        reservoir = measures.Reservoir(10, seed)
        for item in range(100):
            reservoir.add(item)
        assert len(reservoir.items) == 10 and reservoir.seen == 100
        counts[reservoir.items] += 1
    assert counts.min() > 15 and counts.max() < 70  # each item kept about 40 times in 400
    again = measures.Reservoir(10, 0)
    for item in range(100):
        again.add(item)
    first = measures.Reservoir(10, 0)
    for item in range(100):
        first.add(item)
    assert again.items == first.items


# -- truncation -----------------------------------------------------------------------------

def test_truncation_projects_frames_on_the_leading_components():
    shape = (8, 4, 2)  # channels, time, frequency: frames of 16 units
    units, rank = 16, 3
    frames = low_rank(40, units, rank, seed=3, scales=[1.0, 0.1, 0.01])
    latents = frames.reshape(10, 4, 8, 2).transpose(0, 2, 1, 3).copy()  # 10 blocks
    statistics = measures.FrameStatistics(units)
    statistics.add(latents.transpose(0, 2, 1, 3).reshape(-1, units))
    values, components = statistics.decompose()
    truncate = measures.Truncation(statistics.mean, components, shape)
    assert truncate(latents, units) is latents  # the full size: the latent itself
    numpy.testing.assert_allclose(truncate(latents, rank), latents, atol=1e-5)  # all it has
    errors = [float(numpy.mean((truncate(latents, k) - latents) ** 2)) for k in (0, 1, 2)]
    # what is lost is the variance of the components left out
    numpy.testing.assert_allclose(errors, [1.11 / units, 0.11 / units, 0.01 / units], rtol=1e-3)
    assert measures.truncation_grid(4096, 830, 5) == [1, 9, 88, 830, 4096]
    assert measures.truncation_grid(1024, 5000, 3) == [1, 32, 1024]
    curve = [{'k': 1, 'mcd': 9.0, 'mse': 3.0}, {'k': 8, 'mcd': 7.05, 'mse': 2.05},
             {'k': 64, 'mcd': 7.0, 'mse': 2.01}, {'k': 512, 'mcd': 7.0, 'mse': 2.0}]
    assert measures.smallest_k_within(curve, 'mcd', 0.1) == 8
    assert measures.smallest_k_within(curve, 'mse', 0.01, relative=True) == 64


def test_real_steps_of_the_padded_last_block():
    assert latent_analysis.real_steps(64, 16) == [16, 16]
    assert latent_analysis.real_steps(33, 16) == [16, 1]
    assert latent_analysis.real_steps(46, 16) == [16, 7]
    assert latent_analysis.real_steps(5, 16) == [3]


@pytest.fixture(scope='module')
def tiny_model(c9335bce_run):
    model, summary = runs.load_model(str(c9335bce_run))
    return model, summary


@pytest.fixture(scope='module')
def recording():
    from common import audio
    return audio.load(os.path.join(REPOSITORY, 'data', 'demo', 'flite_slt', '005.flac'))


def test_truncation_at_full_size_reproduces_common_reconstruct_exactly(tiny_model, recording):
    model, _ = tiny_model
    scaled = sp.normalize_batch(recording[None])[0][0]
    spectrogram = reconstruct.recording_spectrogram(scaled)
    latents = inference.encode(model, spectrogram)
    units = latents.shape[1] * latents.shape[3]
    frames = latents.transpose(0, 2, 1, 3).reshape(-1, units)
    statistics = measures.FrameStatistics(units)
    statistics.add(frames)
    values, components = statistics.decompose()
    truncate = measures.Truncation(statistics.mean, components, latents.shape[1:])
    output = latent_analysis.truncated_output(model, spectrogram, truncate, units)
    assert numpy.array_equal(output, inference.autoencode(model, spectrogram))
    wave = reconstruct.render(output, len(scaled), 5)
    assert numpy.array_equal(wave, reconstruct.reconstruct(model, scaled, None, 5))
    smaller = latent_analysis.truncated_output(model, spectrogram, truncate, 1)
    assert not numpy.array_equal(smaller, output)


def test_the_full_size_point_is_what_evaluate_measures(tiny_model, recording):
    """MSE, LSD and the true-phase MCD of the full latent are common.evaluate's numbers."""
    model, _ = tiny_model
    scaled = sp.normalize_batch(recording[None])[0][0]
    latents = inference.encode(model, reconstruct.recording_spectrogram(scaled))
    units = latents.shape[1] * latents.shape[3]
    statistics = measures.FrameStatistics(units)
    statistics.add(latents.transpose(0, 2, 1, 3).reshape(-1, units))
    values, components = statistics.decompose()
    truncate = measures.Truncation(statistics.mean, components, latents.shape[1:])
    found = latent_analysis.truncation_utterance(model, recording, truncate, [1, units],
                                                 f0_method='dio')
    expected = evaluate.evaluate_utterance(model, recording, griffin_lim_iterations=1,
                                           f0_method='dio')
    assert found[units]['mse'] == pytest.approx(expected['spectrogram_mse'], rel=1e-6)
    assert found[units]['lsd'] == pytest.approx(expected['spectrogram_lsd_db'], rel=1e-6)
    assert found[units]['mcd'] == pytest.approx(expected['autoencoder_true_phase']['mcd_db'],
                                                rel=1e-6)
    assert found[1]['mse'] != found[units]['mse']


def test_long_files_in_segments_give_the_numbers_of_the_whole_utterance(tiny_model):
    """12 s of speech, encoded and measured whole and in 5.1 s segments (5.1 s margins for the
    measures): the same latents, MSE and LSD; the MCD within what F0 on each context moves."""
    import glob
    from common import audio
    model, _ = tiny_model
    paths = sorted(glob.glob(os.path.join(REPOSITORY, 'data', 'demo', 'flite_rms', '*.flac')))
    wave = numpy.concatenate([audio.load(path) for path in paths[:5]])[:12 * 16000]
    scaled = sp.normalize_batch(wave[None])[0][0]
    whole = inference.encode(model, reconstruct.recording_spectrogram(scaled))
    parts = list(latent_analysis.encoded_segments(model, scaled, None, segment_frames=160))
    assert [frames for frames, _ in parts] == [160, 160, 54]
    assert numpy.array_equal(numpy.concatenate([latents for _, latents in parts]), whole)
    units = whole.shape[1] * whole.shape[3]
    statistics = measures.FrameStatistics(units)
    statistics.add(whole.transpose(0, 2, 1, 3).reshape(-1, units))
    values, components = statistics.decompose()
    truncate = measures.Truncation(statistics.mean, components, whole.shape[1:])
    grid = [4, units]
    found = latent_analysis.truncation_utterance(model, wave, truncate, grid, f0_method='dio')
    lines = []
    segmented = latent_analysis.truncation_utterance(
        model, wave, truncate, grid, f0_method='dio', segment_frames=160, margin_frames=160,
        progress=lambda done, seconds: lines.append((round(done, 1), round(seconds, 1))))
    assert lines == [(5.2, 12.0), (10.3, 12.0), (12.0, 12.0)]
    for k in grid:
        assert segmented[k]['mse'] == pytest.approx(found[k]['mse'], rel=1e-6)
        assert segmented[k]['lsd'] == pytest.approx(found[k]['lsd'], rel=1e-6)
        assert segmented[k]['mcd'] == pytest.approx(found[k]['mcd'], abs=0.01)


# -- the speaker probe ----------------------------------------------------------------------

def voices_data(seed=0, voices=4, utterances=5, blocks=6, units=200, separation=1.0):
    """Time-pooled blocks: a voice's mean direction + an utterance's offset + noise."""
    rng = numpy.random.default_rng(seed)
    centres = separation * rng.normal(size=(voices, units))
    features, labels, groups = [], [], []
    for voice in range(voices):
        for utterance in range(utterances):
            offset = 0.5 * rng.normal(size=units)
            for _ in range(blocks):
                features.append(centres[voice] + offset + rng.normal(size=units))
                labels.append('voice%d' % voice)
                groups.append(voice * utterances + utterance)
    return numpy.array(features), numpy.array(labels), numpy.array(groups)


def test_folds_keep_utterances_whole_and_every_voice_in_training():
    _, labels, groups = voices_data(utterances=3)
    folds, count = measures.grouped_folds(groups, labels)
    assert count == 10  # min(10, 12 utterances)
    for group in set(groups.tolist()):
        assert len(set(folds[groups == group].tolist())) == 1
    for fold in range(count):
        assert set(labels[folds != fold].tolist()) == set(labels.tolist())


def test_the_probe_beats_chance_on_separable_voices():
    features, labels, groups = voices_data()
    found = measures.linear_probe(features, labels, groups)
    assert found['chance'] == 0.25 and found['samples'] == 120 and found['folds'] == 10
    assert found['accuracy'] > 0.9


def test_the_probe_does_not_beat_chance_on_shuffled_voices():
    features, labels, groups = voices_data()
    accuracies = [measures.linear_probe(features, measures.shuffled_labels(labels, groups, seed),
                                        groups)['accuracy'] for seed in range(5)]
    assert numpy.mean(accuracies) < 0.25 + 0.1, accuracies
    # shuffling moves whole utterances: each voice keeps its number of utterances
    shuffled = measures.shuffled_labels(labels, groups, 0)
    for group in set(groups.tolist()):
        assert len(set(shuffled[groups == group].tolist())) == 1
    assert sorted(shuffled.tolist()) == sorted(labels.tolist())


def test_the_probe_on_voices_that_do_not_differ_is_at_chance():
    features, labels, groups = voices_data(separation=0.0)
    assert measures.linear_probe(features, labels, groups)['accuracy'] < 0.25 + 0.1


def test_the_probe_is_skipped_with_a_note_for_one_voice_and_leaves_out_single_utterances():
    features, labels, groups = voices_data(voices=3, utterances=3)
    one = measures.speaker_probe(features[:18], labels[:18], groups[:18])
    assert 'accuracy' not in one and 'one voice (voice0)' in one['note']
    labels[groups == 8] = 'solo'  # voice2's third utterance: a fourth voice of one utterance
    found = measures.speaker_probe(features, labels, groups)
    assert found['left_out'] == ['solo'] and found['voices_probed'] == 3
    assert found['voices'] == 4 and found['utterances'] == 8
    assert 0 <= found['shuffled_accuracy'] <= 1


def test_the_voice_map_separates_separable_voices():
    features, labels, groups = voices_data(separation=3.0)
    found = measures.voice_map(features, labels)
    assert found['voices'] == ['voice0', 'voice1', 'voice2', 'voice3']
    assert len(found['x']) == len(found['y']) == len(found['voice']) == 120
    points = numpy.array([found['x'], found['y']]).T
    voice = numpy.array(found['voice'])
    centres = numpy.array([points[voice == v].mean(axis=0) for v in range(4)])
    spread = numpy.mean([points[voice == v].std(axis=0).mean() for v in range(4)])
    assert numpy.linalg.norm(centres - centres.mean(axis=0), axis=1).mean() > spread


def test_the_speaker_is_the_folder_at_the_level():
    assert latent_analysis.speaker_of('flite_slt/005.flac', 1) == 'flite_slt'
    assert latent_analysis.speaker_of('19/198/19-198-0001.flac', 1) == '19'
    assert latent_analysis.speaker_of('19/198/19-198-0001.flac', 2) == '198'
    assert latent_analysis.speaker_of('a.wav', 1) is None


# -- what the page shows --------------------------------------------------------------------

def test_summary_rows_show_what_is_missing_or_not_a_number_as_a_dash():
    rows = measures.summary_rows({'units': 4096, 'active_units': 'many', 'effective_rank': 1e999,
                                  'truncation': [{'k': 4096, 'mcd': 7.5}],
                                  'speaker_probe': {'note': 'one voice'}})
    values = {label: value for label, value, _ in rows}
    assert values['units per frame'] == '4,096'
    assert values['active units (variance > 0.01)'] == '-'
    assert values['frame PCA: effective rank'] == '-'
    assert values['MCD of the full latent (true phase)'] == '7.5'
    assert values['speaker probe'] == 'one voice'
    assert measures.summary_rows([]) and measures.table_metrics(None) == {}


def test_an_analysis_file_that_is_not_an_object_is_refused(tmp_path):
    (tmp_path / measures.FILENAME).write_text('[1, 2]')
    with pytest.raises(runs.RunError, match='not a JSON object'):
        measures.read_analysis(str(tmp_path))
    assert measures.read_analysis(str(tmp_path / 'absent')) is None


# -- a tiny run through the whole command ---------------------------------------------------

def copy_run(run, folder):
    """A results folder with the run's files, model.npz linked."""
    shutil.copytree(run, folder, ignore=shutil.ignore_patterns('snapshot_*', 'model.npz'))
    os.symlink(run / 'model.npz', folder / 'model.npz')
    return folder


@pytest.fixture(scope='module')
def analysed(c9335bce_run, tmp_path_factory):
    """The tiny c9335bce run analysed by the command: the first 5 validation files are 3 of
    espeak_en-gb_f2 and 2 of espeak_en-us_m3, so the probe has two voices."""
    folder = copy_run(c9335bce_run, tmp_path_factory.mktemp('analysed') / 'run')
    result = subprocess.run([sys.executable, '-m', 'common.latent', 'analyze', str(folder),
                             '--max-files', '5', '--truncation-points', '3'],
                            capture_output=True, text=True, cwd=REPOSITORY, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return folder, result


def test_the_command_writes_the_analysis_the_figure_and_the_page(analysed):
    folder, result = analysed
    with open(folder / measures.FILENAME) as f:
        analysis = json.load(f)
    assert set(KEYS) <= set(analysis)
    assert analysis['files'] == 5 and analysis['validation_files'] == 14
    assert analysis['units'] == 1024 * 9 and analysis['latent_shape'] == [1024, 16, 9]
    assert 0 <= analysis['active_units'] <= analysis['units']
    assert 0 <= analysis['saturated_fraction'] <= 1
    frames = analysis['frames']  # fewer than the units: the Gram route, rank frames - 1
    assert analysis['pca'] == 'Gram matrix of the frames' and analysis['rank'] <= frames - 1
    assert 1 <= analysis['components_90'] <= analysis['components_99'] <= analysis['rank']
    ks = [point['k'] for point in analysis['truncation']]
    assert ks == [1, analysis['rank'], 9216]  # 3 points: up to the rank, then the full size
    for point in analysis['truncation']:
        assert all(math.isfinite(point[key]) and point[key] > 0 for key in ('mse', 'lsd', 'mcd'))
    assert analysis['k_within_0_1_db'] in ks
    probe = analysis['speaker_probe']
    assert probe['voices_probed'] == 2 and probe['utterances'] == 5
    assert 0 <= probe['accuracy'] <= 1 and 0.5 <= probe['chance'] < 1
    assert analysis['blocks']['values'] == 1024 * 16 * 9
    assert analysis['speaker_level'] == 1
    assert len(analysis['voice_map']['x']) == probe['samples']
    lines = result.stdout.splitlines()
    assert any(line.startswith('active units (variance > 0.01)') for line in lines)
    assert any(line.split()[:1] == ['9216'] for line in lines)  # the curve's last row
    assert any(line.startswith('[5/5] espeak_en-us_m3/') for line in result.stdout.splitlines())
    image = matplotlib.image.imread(str(folder / measures.FIGURE))
    assert image.shape[1] > 1000 and image.std() > 0.01
    page = (folder / 'index.html').read_text()
    assert '<section id="latent">' in page and 'src="{}"'.format(measures.FIGURE) in page
    assert 'smallest k within 0.1 dB MCD of the full latent' in page


def test_compare_draws_the_runs_latents_and_tables_their_numbers(analysed, c9335bce_run,
                                                                 tmp_path, capsys):
    folder, _ = analysed
    out = tmp_path / 'compare'
    assert compare.main([str(folder), str(c9335bce_run), '--out', str(out)]) == 0
    text = capsys.readouterr().out
    assert any(line.startswith('| latent: effective rank |') for line in text.splitlines())
    image = matplotlib.image.imread(str(out / compare.LATENT))
    assert image.shape[1] > 800 and image.std() > 0.01
    assert 'src="{}"'.format(compare.LATENT) in (out / compare.PAGE).read_text()


# -- bad input: one line --------------------------------------------------------------------

@pytest.fixture
def corpora(tmp_path):
    demo = os.path.join(REPOSITORY, 'data', 'demo')
    one = tmp_path / 'one' / 'flite_slt'
    one.mkdir(parents=True)
    shutil.copy(os.path.join(demo, 'flite_slt', '005.flac'), one)
    flat = tmp_path / 'flat'
    flat.mkdir()
    for index, voice in enumerate(('flite_slt', 'flite_awb', 'flite_rms', 'flite_kal16')):
        shutil.copy(os.path.join(demo, voice, '005.flac'), flat / ('%d.flac' % index))
    return {'one': tmp_path / 'one', 'flat': flat}


@pytest.mark.parametrize('case, message', [
    ('no model', 'no model.npz'),
    ('one file', 'one usable audio file'),
    ('no speakers', 'no speakers: '),
])
def test_bad_input_is_one_line(case, message, c9335bce_run, corpora, tmp_path, capsys):
    folder = copy_run(c9335bce_run, tmp_path / 'run')
    flags = []
    if case == 'no model':
        (folder / 'model.npz').unlink()
    else:
        flags = ['--dataset', str(corpora['one' if case == 'one file' else 'flat'])]
    assert latent.main(['analyze', str(folder)] + flags + ['--truncation-points', '2']) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('python -m common.latent: error: '), err
    assert message in err[0]
    assert not (folder / measures.FILENAME).exists()


def test_a_corpus_without_speaker_folders_is_analysed_without_the_probe(c9335bce_run, corpora,
                                                                         tmp_path):
    folder = copy_run(c9335bce_run, tmp_path / 'run')
    lines = []
    analysis = latent_analysis.analyze(str(folder), str(corpora['flat']), points=2,
                                       speaker_level=0, f0_method='dio', log=lines.append,
                                       write_page=False)
    assert analysis['files'] == 1 and 'probe skipped' in analysis['speaker_probe']['note']
    assert [point['k'] for point in analysis['truncation']][-1] == 9216
    assert any(line.startswith('done in ') for line in lines)


@pytest.mark.parametrize('flags', [['--max-files', '0'], ['--truncation-points', '1'],
                                   ['--speaker-level', '-1']])
def test_bad_flags_are_refused_by_the_parser(flags, capsys):
    with pytest.raises(SystemExit) as exit_:
        latent.main(['analyze', 'results/x'] + flags)
    assert exit_.value.code == 2
    assert flags[0] in capsys.readouterr().err
