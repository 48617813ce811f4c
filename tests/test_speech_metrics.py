"""common.metrics' speech measures against independent references: STOI/ESTOI, narrowband
PESQ, F0 RMSE in cents, V/UV error and F0 correlation."""
import math
import sys

import numpy
import pytest

import common  # noqa: F401
from common import audio, metrics
from common import spectrogram as sp


@pytest.fixture(scope='module')
def utterance():
    """The pysptk utterance (CMU ARCTIC a0007), min-max scaled, 2.5 s of it."""
    import pysptk.util
    wave = audio.load(pysptk.util.example_audio_file())
    return sp.normalize_batch(wave[None])[0][0][:40000].astype(numpy.float64)


def with_noise(wave, snr_db, seed=0):
    """wave plus white noise at snr_db below the wave's mean power."""
    noise = numpy.random.default_rng(seed).standard_normal(len(wave))
    return wave + noise * math.sqrt(numpy.mean(wave ** 2) / 10 ** (snr_db / 10))


def harmonic_tone(f0, rate=sp.SAMPLE_RATE, top=3800.0):
    """A voiced sound with the F0 contour ``f0`` (Hz, one value per sample): harmonics up to
    ``top`` Hz with 1/k amplitudes, as a glottal source through a flat tract."""
    phase = 2 * numpy.pi * numpy.cumsum(f0) / rate
    wave = numpy.zeros(len(f0))
    for k in range(1, int(top / f0.min()) + 1):
        wave += numpy.where(k * f0 < top, numpy.sin(k * phase) / k, 0.0)
    return 0.5 * wave / numpy.abs(wave).max()


# -- STOI and ESTOI ----------------------------------------------------------------------------

@pytest.mark.parametrize('extended', [False, True])
def test_stoi_of_a_wave_with_itself_is_one(utterance, extended):
    assert metrics.stoi(utterance, utterance.copy(), extended=extended) == pytest.approx(
        1.0, abs=1e-6)


@pytest.mark.parametrize('extended', [False, True])
def test_stoi_falls_monotonically_with_added_noise(utterance, extended):
    scores = [metrics.stoi(utterance, with_noise(utterance, snr), extended=extended)
              for snr in (30, 15, 5, 0, -5, -15)]
    assert all(a > b for a, b in zip(scores, scores[1:])), scores
    assert scores[0] > 0.95 and scores[-1] < 0.6, scores


def test_stoi_windows_count_the_frames_of_speech():
    """Derived by hand: 1 s of white noise at pystoi's 10 kHz has frames of 256 at hop 128
    starting at 0 .. 9728 (77 frames, none silent); their overlap-add is 76 * 128 + 256 samples
    long, which gives 76 frames, so 76 - 30 + 1 = 47 windows of 30 frames.  2000 samples of
    speech after silence: 14 frames, no window."""
    noise = numpy.random.default_rng(0).standard_normal(10000)
    assert metrics.stoi_windows(noise, 10000) == 47
    silence_then_speech = numpy.concatenate([numpy.zeros(16000), noise[:2000]])
    assert metrics.stoi(silence_then_speech, silence_then_speech, 10000) is None  # < 30 frames


def test_stoi_of_halves_weighted_by_windows_is_that_of_the_whole(utterance):
    """How common.evaluate combines the segments of a long recording."""
    test = with_noise(utterance, 5)
    half = len(utterance) // 2
    parts = [(utterance[:half], test[:half]), (utterance[half:], test[half:])]
    for extended in (False, True):
        weights = [metrics.stoi_windows(clean) for clean, _ in parts]
        combined = sum(weight * metrics.stoi(clean, noisy, extended=extended)
                       for weight, (clean, noisy) in zip(weights, parts)) / sum(weights)
        whole = metrics.stoi(utterance, test, extended=extended)
        assert combined == pytest.approx(whole, abs=0.02)


def test_waves_of_different_length_are_refused(utterance):
    with pytest.raises(ValueError, match='same length'):
        metrics.stoi(utterance, utterance[:-1])


# -- PESQ --------------------------------------------------------------------------------------

def test_pesq_of_a_wave_with_itself_is_the_top_of_the_narrowband_scale(utterance):
    pytest.importorskip('pesq', reason='the pesq package (the metrics extra) is not installed')
    assert metrics.pesq_unavailable() is None
    # P.862.1 maps the best raw score 4.5 to 4.549 (the top of the narrowband MOS-LQO scale)
    assert metrics.pesq_narrowband(utterance, utterance.copy()) == pytest.approx(4.549,
                                                                                 abs=0.001)


def test_pesq_falls_with_added_noise(utterance):
    pytest.importorskip('pesq', reason='the pesq package (the metrics extra) is not installed')
    scores = [metrics.pesq_narrowband(utterance, with_noise(utterance, snr))
              for snr in (40, 20, 10, 0)]
    assert all(a > b for a, b in zip(scores, scores[1:])), scores
    assert scores[-1] < 2.0, scores
    assert metrics.pesq_narrowband(numpy.zeros(16000), numpy.zeros(16000)) is None  # no speech


def test_without_the_pesq_package_pesq_says_why(monkeypatch):
    monkeypatch.setitem(sys.modules, 'pesq', None)  # import pesq raises ImportError
    reason = metrics.pesq_unavailable()
    assert 'pesq package cannot be imported' in reason and '.[metrics]' in reason
    assert '\n' not in reason


# -- F0 ----------------------------------------------------------------------------------------

def test_f0_measures_of_a_shifted_contour_are_the_shift_in_cents():
    times = numpy.arange(400) * 0.005
    contour = 120 + 40 * numpy.sin(2 * numpy.pi * 0.7 * times)
    contour[::7] = 0  # unvoiced frames, the same in both
    for cents in (-300, 50, 100):
        shifted = contour * 2 ** (cents / 1200)
        measures = metrics.f0_measures(contour, shifted)
        assert measures['f0_rmse_cents'] == pytest.approx(abs(cents), rel=1e-9)
        assert measures['f0_correlation'] == pytest.approx(1.0, abs=1e-12)
        assert measures['vuv_error'] == 0.0
        assert measures['voiced_frames'] == 400 - len(range(0, 400, 7))


def test_a_planted_voicing_flip_rate_is_the_vuv_error():
    rng = numpy.random.default_rng(1)
    contour = numpy.where(rng.random(2000) < 0.6, 100 + 50 * rng.random(2000), 0.0)
    flipped = contour.copy()
    flips = rng.choice(2000, size=170, replace=False)  # 8.5 % of the frames
    flipped[flips] = numpy.where(contour[flips] > 0, 0.0, 180.0)
    measures = metrics.f0_measures(contour, flipped)
    assert measures['vuv_error'] == pytest.approx(170 / 2000, abs=1e-15)
    # the frames voiced in both are untouched: no pitch error on them
    assert measures['f0_rmse_cents'] == 0.0 and measures['f0_correlation'] == pytest.approx(1.0)


def test_f0_measures_undefined_without_voiced_frames():
    measures = metrics.f0_measures(numpy.zeros(50), numpy.full(50, 100.0))
    assert measures == {'f0_rmse_cents': None, 'vuv_error': 1.0, 'f0_correlation': None,
                        'voiced_frames': 0}
    with pytest.raises(ValueError, match='same length'):
        metrics.f0_measures(numpy.zeros(5), numpy.zeros(6))


@pytest.mark.parametrize('method', metrics.F0_METHODS)
def test_f0_rmse_of_a_pitch_shifted_copy_is_the_shift(method):
    """Through the analysis, as common.evaluate measures (WORLD at 8 kHz): a 2.5 s voiced tone
    gliding 110-190 Hz and the same tone 100 cents higher."""
    seconds = numpy.arange(int(2.5 * sp.SAMPLE_RATE)) / sp.SAMPLE_RATE
    f0 = 150 + 40 * numpy.sin(2 * numpy.pi * 0.6 * seconds)
    contours = [metrics.f0_contour(metrics.resample(harmonic_tone(f0 * factor), sp.SAMPLE_RATE,
                                                    8000), 8000, method)[0]
                for factor in (1.0, 2 ** (100 / 1200))]
    measures = metrics.f0_measures(*contours)
    assert measures['f0_rmse_cents'] == pytest.approx(100, abs=5)
    assert measures['f0_correlation'] > 0.99
    assert measures['vuv_error'] < 0.02
    assert measures['voiced_frames'] > 0.95 * len(contours[0])


# -- DNSMOS (the mos extra) --------------------------------------------------------------------

def test_dnsmos_is_speechmos_own_score(utterance):
    """Reference values: speechmos 0.0.1.1's own dnsmos.run (with librosa 0.11 and onnxruntime
    1.32, in a separate environment, without network) on these two waves: 2.383873 and
    2.087126.  DNSMOS needs no reference wave; 10 dB of white noise lowers it."""
    pytest.importorskip('onnxruntime', reason='the mos extra is not installed')
    pytest.importorskip('speechmos', reason='the mos extra is not installed')
    assert metrics.dnsmos_unavailable() is None
    noisy = numpy.clip(with_noise(utterance, 10), -1, 1)
    assert metrics.dnsmos_overall(utterance) == pytest.approx(2.383873, abs=1e-3)
    assert metrics.dnsmos_overall(noisy) == pytest.approx(2.087126, abs=1e-3)
    # 8 kHz input is resampled to the model's 16 kHz (band-limiting to 4 kHz moves it ~0.1)
    low = metrics.resample(utterance, sp.SAMPLE_RATE, 8000)
    assert metrics.dnsmos_overall(low, 8000) == pytest.approx(2.383873, abs=0.2)


def test_without_the_mos_extra_dnsmos_says_why(monkeypatch):
    monkeypatch.setitem(sys.modules, 'onnxruntime', None)
    monkeypatch.setattr(metrics, '_dnsmos_session', [])
    reason = metrics.dnsmos_unavailable()
    assert 'speechmos and onnxruntime' in reason and '.[mos]' in reason and '\n' not in reason
