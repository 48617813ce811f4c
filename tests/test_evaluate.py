"""common.evaluate on a finished tiny bc7db4a2 run."""
import importlib.util
import json
import math
import os
import shutil
import subprocess
import sys

import pytest

import common  # noqa: F401
from common import evaluate

# Evaluations of trained runs: slow, so left out of the quick check
# (README.md: pytest -m "not slow").
pytestmark = pytest.mark.slow

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RENDERINGS = ('griffin_lim_input', 'autoencoder_griffin_lim', 'autoencoder_true_phase')
MEASURES = ('mcd_db', 'lsd_db', 'spectral_convergence', 'stoi', 'estoi', 'f0_rmse_cents',
            'vuv_error', 'f0_correlation')
try:
    import pesq  # noqa: F401
    MEASURES += ('pesq_nb',)
except ImportError:  # the metrics extra is not installed: evaluate skips PESQ
    pass
NOT_MEANS = ('confidence_95', 'per_utterance', 'f0_method', 'skipped')
DNSMOS = all(importlib.util.find_spec(name) for name in ('speechmos', 'onnxruntime'))


def copy_run(run, folder, summary=None):
    """A results folder with the run's summary (or `summary`) and log, model.npz linked."""
    folder.mkdir()
    with open(run / 'summary.json') as f:
        content = json.load(f)
    content.update(summary or {})
    with open(folder / 'summary.json', 'w') as f:
        json.dump(content, f)
    shutil.copy(run / 'log', folder / 'log')
    os.symlink(run / 'model.npz', folder / 'model.npz')
    return folder


def numbers(evaluation):
    for key, value in evaluation.items():
        if key in NOT_MEANS:
            continue
        if isinstance(value, dict):
            yield from numbers(value)
        else:
            assert isinstance(value, (int, float)) and not isinstance(value, bool), (key, value)
            yield value


def test_evaluate_writes_evaluation_json(bc7db4a2_run, tmp_path):
    folder = copy_run(bc7db4a2_run, tmp_path / 'run')
    result = subprocess.run([sys.executable, '-m', 'common.evaluate', str(folder),
                             '--max-files', '2'], capture_output=True, text=True,
                            cwd=REPOSITORY, timeout=300)
    assert result.returncode == 0, result.stderr
    assert 'AutoEncoder, Griffin-Lim' in result.stdout and 'STOI' in result.stdout  # the table
    with open(folder / 'evaluation.json') as f:
        text = f.read()
    evaluation = json.loads(text)
    assert evaluation['files'] == 2
    assert evaluation['validation_files'] == 14  # the demo corpus, seed 0, as training split it
    assert evaluation['griffin_lim_iterations'] == 100
    assert evaluation['f0_method'] == 'harvest'
    assert all(value is None or math.isfinite(value) for value in numbers(evaluation))
    per_utterance, intervals = evaluation['per_utterance'], evaluation['confidence_95']
    assert len(per_utterance['file']) == 2 and per_utterance['file'][0].endswith('.flac')
    assert 'Student t' in intervals['method']
    for rendering in RENDERINGS:
        assert sorted(evaluation[rendering]) == sorted(MEASURES)
        assert sorted(per_utterance[rendering]) == sorted(intervals[rendering]) == sorted(MEASURES)
        assert evaluation[rendering]['mcd_db'] > 0
        for measure, mean in evaluation[rendering].items():
            values = per_utterance[rendering][measure]
            assert len(values) == 2
            if None not in values:  # the mean of the two, inside its interval
                assert mean == pytest.approx(sum(values) / 2, rel=1e-5)
                low, high = intervals[rendering][measure]
                assert low <= mean <= high
    # each per-utterance list on one line: evaluation.json stays small for large splits
    assert '"file": ["' in text
    # the barely trained network is far worse than Griffin-Lim alone
    assert (evaluation['autoencoder_griffin_lim']['mcd_db']
            > evaluation['griffin_lim_input']['mcd_db'])
    assert evaluation['spectrogram_mse'] > 1
    assert evaluation['spectrogram_lsd_db'] > evaluation['griffin_lim_input']['lsd_db']


def test_evaluate_on_the_pysptk_utterance(bc7db4a2_run, tmp_path):
    """--dataset: any folder; one file is on both sides of the split."""
    import pysptk.util
    corpus = tmp_path / 'arctic'
    corpus.mkdir()
    shutil.copy(pysptk.util.example_audio_file(), corpus)
    folder = copy_run(bc7db4a2_run, tmp_path / 'run')
    lines = []
    result = evaluate.evaluate(str(folder), str(corpus), griffin_lim_iterations=20,
                               f0_method='dio', log=lines.append, dnsmos=DNSMOS)
    assert result['files'] == 1
    assert [line for line in lines if line.startswith('[')][0].startswith('[1/1] arctic_a0007.wav')
    assert 3.5 < result['seconds'] < 4.1
    assert 0 < result['griffin_lim_input']['mcd_db'] < 8
    assert 0 < result['griffin_lim_input']['spectral_convergence'] < 1
    assert 0 < result['griffin_lim_input']['lsd_db'] < 3
    # Griffin-Lim of the input is intelligible; the barely trained network's output is not
    assert 0.6 < result['griffin_lim_input']['stoi'] < 1
    assert result['autoencoder_griffin_lim']['stoi'] < result['griffin_lim_input']['stoi']
    assert result['griffin_lim_input']['vuv_error'] < result['autoencoder_griffin_lim'][
        'vuv_error']
    assert result['per_utterance']['file'] == ['arctic_a0007.wav']
    assert result['confidence_95']['griffin_lim_input']['stoi'] is None  # one utterance
    with open(folder / 'evaluation.json') as f:
        assert json.load(f) == result
    text = evaluate.table(result)
    assert 'MCD' in text and 'ESTOI' in text and 'V/UV error %' in text
    if DNSMOS:  # the mos extra
        changes = [result[key]['dnsmos_ovrl_change'] for key in RENDERINGS]
        assert all(-4 < change < 4 for change in changes) and len(set(changes)) == 3
        # Not a fidelity measure: it rates the output without knowing the input, and the
        # untrained network's unintelligible output scores above Griffin-Lim of the input
        # (measured: +0.21 and -0.46), which STOI above rates far lower.
        assert 'DNSMOS OVRL change' in text
    else:
        assert 'dnsmos_ovrl_change' not in result['griffin_lim_input']


def test_dnsmos_without_the_mos_extra_is_refused_in_one_line(bc7db4a2_run, tmp_path,
                                                             monkeypatch, capsys):
    from common import metrics
    monkeypatch.setitem(sys.modules, 'onnxruntime', None)
    monkeypatch.setattr(metrics, '_dnsmos_session', [])
    folder = copy_run(bc7db4a2_run, tmp_path / 'run')
    assert evaluate.main([str(folder), '--dnsmos', '--max-files', '1']) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('python -m common.evaluate: error: --dnsmos: ')
    assert '.[mos]' in err[0]
    assert not (folder / 'evaluation.json').exists()


def test_without_pesq_evaluate_says_once_that_it_skipped_pesq(bc7db4a2_run, tmp_path,
                                                              monkeypatch):
    monkeypatch.setitem(sys.modules, 'pesq', None)  # import pesq raises ImportError
    folder = copy_run(bc7db4a2_run, tmp_path / 'run')
    lines = []
    result = evaluate.evaluate(str(folder), max_files=2, griffin_lim_iterations=2,
                               f0_method='dio', log=lines.append)
    skipped = [line for line in lines if 'PESQ' in line]
    assert len(skipped) == 1 and skipped[0].startswith('PESQ skipped: the pesq package')
    assert '.[metrics]' in result['skipped']['pesq_nb']
    for rendering in RENDERINGS:
        assert 'pesq_nb' not in result[rendering] and 'stoi' in result[rendering]
    assert 'PESQ (narrowband) skipped: the pesq package' in evaluate.table(result)


@pytest.fixture
def folders(bc7db4a2_run, tmp_path):
    nomodel = tmp_path / 'nomodel'
    nomodel.mkdir()
    shutil.copy(bc7db4a2_run / 'summary.json', nomodel)
    moved = copy_run(bc7db4a2_run, tmp_path / 'moved',
                     {'dataset': {'path': str(tmp_path / 'gone')}})
    return {'nomodel': nomodel, 'moved': moved, 'run': bc7db4a2_run, 'empty': tmp_path}


@pytest.mark.parametrize('folder, flags, message', [
    ('nomodel', [], 'no model.npz'),
    ('empty', [], 'not a finished run'),
    ('moved', [], 'is not there; give --dataset'),
    ('run', ['--dataset', 'DOES-NOT-EXIST'], 'corpus folder does not exist'),
])
def test_evaluate_bad_input(folders, folder, flags, message, capsys):
    flags = [str(folders['empty'] / 'absent') if flag == 'DOES-NOT-EXIST' else flag
             for flag in flags]
    assert evaluate.main([str(folders[folder])] + flags + ['--max-files', '1']) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('python -m common.evaluate: error: ')
    assert message in err[0]
    assert not (folders[folder] / 'evaluation.json').exists()


# -- long utterances: measured in segments, memory bounded ------------------------------------

@pytest.fixture(scope='module')
def speech():
    """About 40 s of the demo corpus's speech, one recording after another, and a real net."""
    import glob
    import numpy
    from conftest import load_experiment_module
    from common import audio
    paths = sorted(glob.glob(os.path.join(REPOSITORY, 'data', 'demo', '*', '*.flac')))
    wave = numpy.concatenate([audio.load(path) for path in paths[:12]])
    assert len(wave) > 40 * 16000
    numpy.random.seed(0)
    return wave[:40 * 16000], load_experiment_module('c9335bce').Net()


def flat(result, prefix=''):
    for key, value in result.items():
        if isinstance(value, dict):
            yield from flat(value, prefix + key + '.')
        else:
            yield prefix + key, value


def test_segments_cover_every_frame_once():
    found = list(evaluate.segments(1000, 320, 160))
    assert found == [(0, 0, 320, 480), (160, 320, 640, 800), (480, 640, 960, 1000),
                     (800, 960, 1000, 1000)]
    assert list(evaluate.segments(100)) == [(0, 0, 100, 100)]  # a short file: one, whole
    with pytest.raises(ValueError):
        list(evaluate.segments(1000, 100, 0))  # not on a WORLD frame


def test_segments_give_the_numbers_of_the_whole_utterance(speech):
    """12 s measured whole, and in three segments of 5.1 s with 5.1 s margins.

    Equal: everything computed from the spectrogram, the network's output and the true phase
    (exact up to float rounding; the MCD's F0 is estimated on each context, a difference of
    thousandths of a dB).  Griffin-Lim starts each context from its own random phase: its
    renderings differ by about what another seed gives (on this 12 s: LSD +-0.01 dB, spectral
    convergence +-0.003, MCD +-0.03 dB), far below the differences between models.
    """
    wave, net = speech
    wave = wave[:12 * 16000]
    options = dict(griffin_lim_iterations=20, f0_method='dio')
    whole = dict(flat(evaluate.evaluate_utterance(net, wave, **options)))
    parts = dict(flat(evaluate.evaluate_utterance(net, wave, segment_frames=160,
                                                  margin_frames=160, **options)))
    assert sorted(whole) == sorted(parts) and whole['frames'] == parts['frames'] == 374
    for key, value in whole.items():
        if 'griffin_lim' not in key and key.split('.')[-1] in ('frames', 'spectrogram_mse',
                                                                 'spectrogram_lsd_db', 'lsd_db',
                                                                 'spectral_convergence'):
            assert parts[key] == pytest.approx(value, rel=1e-6), key
    assert parts['autoencoder_true_phase.mcd_db'] == pytest.approx(
        whole['autoencoder_true_phase.mcd_db'], abs=0.01)
    # F0 of the true-phase renderings: dio on each context finds the contour of the whole
    # (measured: equal to 1e-8).
    for measure, limit in (('f0_rmse_cents', 0.5), ('vuv_error', 0.002),
                           ('f0_correlation', 0.002)):
        key = 'autoencoder_true_phase.' + measure
        assert parts[key] == pytest.approx(whole[key], abs=limit), key
    # STOI and ESTOI: each segment's own silence threshold, no windows across segment
    # boundaries (measured: differences up to 0.005).  PESQ: the mean of the segments' (GL of
    # the input: 0.007; the untrained network's noise, at the bottom of the scale: up to 0.3).
    # Griffin-Lim: another random start per context.
    tolerance = {'mcd_db': 0.1, 'lsd_db': 0.05, 'spectral_convergence': 0.01, 'stoi': 0.02,
                 'estoi': 0.02, 'pesq_nb': 0.05, 'f0_rmse_cents': 15, 'vuv_error': 0.01,
                 'f0_correlation': 0.03}
    for rendering in RENDERINGS:
        for measure, limit in tolerance.items():
            key = '{}.{}'.format(rendering, measure)
            if 'autoencoder' in key and measure == 'pesq_nb':
                limit = 0.5
            if key in whole and whole[key] is not None:
                assert parts[key] == pytest.approx(whole[key], abs=limit), key


def test_memory_does_not_grow_with_the_length_of_the_utterance(speech):
    """Python-side allocations (NumPy's included) of 10 s and of 20 s in 5.1 s segments."""
    import tracemalloc
    wave, net = speech
    peaks = []
    for seconds in (10, 20):
        tracemalloc.start()
        try:
            evaluate.evaluate_utterance(net, wave[:seconds * 16000], griffin_lim_iterations=1,
                                        f0_method='dio', segment_frames=160, margin_frames=0)
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
    assert peaks[1] < 1.2 * peaks[0], peaks  # measured whole, it doubles


def test_a_long_file_reports_its_progress(bc7db4a2_run, speech, tmp_path, monkeypatch):
    import soundfile
    wave, _ = speech
    corpus = tmp_path / 'long'
    corpus.mkdir()
    soundfile.write(str(corpus / 'long.wav'), wave[:7 * 16000], 16000)
    monkeypatch.setattr(evaluate, 'SEGMENT_FRAMES', 160)
    folder = copy_run(bc7db4a2_run, tmp_path / 'run')
    lines = []
    evaluate.evaluate(str(folder), str(corpus), griffin_lim_iterations=2, f0_method='dio',
                      log=lines.append)
    progress = [line for line in lines if line.startswith('[1/1] long.wav')]
    assert progress[:-1] == ['[1/1] long.wav: 5 of 7 s measured']
    assert progress[-1].startswith('[1/1] long.wav: 217 frames, MCD ')
