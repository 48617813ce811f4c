"""common.metrics on known cases: MCD, log-spectral distance, spectral convergence."""
import math

import numpy
import pytest

import common  # noqa: F401
from common import audio, metrics
from common import spectrogram as sp


@pytest.fixture(scope='module')
def utterance():
    """The pysptk utterance (CMU ARCTIC a0007), min-max scaled, 2.5 s of it (fast analyses)."""
    import pysptk.util
    wave = audio.load(pysptk.util.example_audio_file())
    return sp.normalize_batch(wave[None])[0][0][:40000].astype(numpy.float64)


def noise(length, level, seed=0):
    return level * numpy.random.default_rng(seed).standard_normal(length)


# -- mel-cepstral distortion -------------------------------------------------------------------

def test_constants():
    assert metrics.mcep_alpha(16000) == pytest.approx(0.41, abs=0.011)
    assert metrics.mcep_alpha(8000) == pytest.approx(0.31, abs=0.011)
    assert metrics.MCD_SCALE == pytest.approx(10 / math.log(10) * math.sqrt(2))


def test_frame_distortion_formula_leaves_out_c0():
    reference = numpy.zeros((3, 25))
    test = numpy.zeros((3, 25))
    test[0, 0] = 5.0  # c_0 only: loudness, not counted
    test[1, 1] = 1.0
    test[2, 1:3] = 1.0
    distortions = metrics.frame_distortions(reference, test)
    scale = 10 / math.log(10)
    assert distortions == pytest.approx([0.0, scale * math.sqrt(2), scale * math.sqrt(4)])


@pytest.mark.parametrize('analysis_rate', [None, 8000])
def test_identical_waves_give_zero(utterance, analysis_rate):
    assert metrics.mel_cepstral_distortion(utterance, utterance.copy(), f0_method='dio',
                                           analysis_rate=analysis_rate) == 0.0


def test_mcd_grows_with_noise(utterance):
    reference = metrics.MelCepstrumReference(utterance, f0_method='dio')
    values = [reference.distortion(utterance + noise(len(utterance), level))
              for level in (0.001, 0.01, 0.1)]
    assert 0 < values[0] < values[1] < values[2]
    assert values[2] > 5  # loud white noise: several dB


def test_mcd_grows_with_noise_band_limited_analysis(utterance):
    """As common.evaluate measures: 8 kHz analysis, F0 and silence from another wave."""
    reference = metrics.MelCepstrumReference(utterance, analysis_rate=8000, f0_method='dio',
                                             analysis_wave=utterance)
    values = [reference.distortion(utterance + noise(len(utterance), level, seed=1))
              for level in (0.001, 0.01, 0.1)]
    assert 0 < values[0] < values[1] < values[2]


def test_harvest_is_the_default_and_works(utterance):
    short = utterance[:16000]
    value = metrics.mel_cepstral_distortion(short, short + noise(len(short), 0.01))
    assert 0 < value < 20


def test_silent_frames_are_left_out(utterance):
    """Frames of digital silence in the reference are not counted, whatever the test holds."""
    speech = utterance[:16000]
    silence = numpy.zeros(8000)
    reference_wave = numpy.concatenate([speech, silence])
    reference = metrics.MelCepstrumReference(reference_wave, f0_method='dio')
    period = int(16000 * metrics.FRAME_PERIOD_MS / 1000)
    assert not reference.mask[(16000 + 1600) // period:].any()  # 100 ms into the silence on
    assert reference.mask[:16000 // period].mean() > 0.5  # most speech frames kept
    # noise in the second half of the silence moves no kept frame
    test_wave = reference_wave.copy()
    test_wave[20000:] += noise(4000, 0.1)
    assert reference.distortion(test_wave) == pytest.approx(0.0, abs=1e-9)


def test_mcd_needs_same_length(utterance):
    with pytest.raises(ValueError, match='same length'):
        metrics.mel_cepstral_distortion(utterance, utterance[:-100], f0_method='dio')
    with pytest.raises(ValueError, match='NaN'):
        metrics.mel_cepstral_distortion(utterance, utterance * numpy.nan, f0_method='dio')
    with pytest.raises(ValueError, match='F0 method'):
        metrics.mel_cepstral_distortion(utterance, utterance, f0_method='yin')


# -- log-spectral distance ---------------------------------------------------------------------

def test_lsd_identical_is_zero():
    s = numpy.random.default_rng(0).uniform(0, sp.MAX_VALUE, (40, 256)).astype(numpy.float32)
    assert metrics.log_spectral_distance(s, s.copy()) == 0.0
    assert metrics.spectrogram_mse(s, s) == 0.0


@pytest.mark.parametrize('offset', [0.1, 1.0, -2.0])
def test_lsd_of_a_constant_offset(offset):
    """A natural-log offset c is a magnitude ratio e**c: 20 log10(e**|c|) = 8.686 |c| dB."""
    s = numpy.random.default_rng(1).uniform(0, 5, (1, 32, 256))
    expected = 20 / math.log(10) * abs(offset)
    assert metrics.log_spectral_distance(s, s + offset) == pytest.approx(expected, rel=1e-9)
    assert metrics.spectrogram_mse(s, s + offset) == pytest.approx(offset ** 2, rel=1e-9)


def test_lsd_is_the_mean_of_per_frame_rms():
    s = numpy.zeros((2, 256))
    t = numpy.zeros((2, 256))
    t[0, 0] = 4.0  # frame 0: RMS 4 / 16 = 0.25; frame 1: 0
    assert metrics.log_spectral_distance(s, t) == pytest.approx(20 / math.log(10) * 0.25 / 2)


def test_lsd_shapes():
    batch = numpy.zeros((3, 1, 32, 256))
    assert metrics.log_spectral_distance(batch, batch + 1) == pytest.approx(20 / math.log(10))
    with pytest.raises(ValueError, match='differ in shape'):
        metrics.log_spectral_distance(numpy.zeros((32, 256)), numpy.zeros((31, 256)))
    with pytest.raises(ValueError, match='256 bins'):
        metrics.log_spectral_distance(numpy.zeros((32, 128)), numpy.zeros((32, 128)))


# -- spectral convergence ----------------------------------------------------------------------

def test_spectral_convergence(utterance):
    wave = utterance[:sp.wave_length(60)].astype(numpy.float32)
    s = sp.utterance_to_spectrogram(wave, scale=False)[0]
    assert metrics.spectral_convergence(s, wave) == pytest.approx(0.0, abs=1e-6)
    # without the clip at the floor, the floor alone counts
    assert metrics.spectral_convergence(s, wave, clip=False) > 0.01
    rough = metrics.spectral_convergence(s, sp.to_wave(s, n_iter=0))
    better = metrics.spectral_convergence(s, sp.to_wave(s, n_iter=30))
    assert 0 < better < rough
    with pytest.raises(ValueError, match='frames'):
        metrics.spectral_convergence(s, wave[:-600])
