"""common.spectrogram against SPEC.md "Input spectrogram", steps 2-6, and its way back to audio."""
import math

from common import compat

compat.apply()  # again here: pytest restores the warning filters that conftest's import set

import numpy
import pysptk
import pytest
import soundfile

from common import spectrogram as S

LN_1000 = numpy.float32(math.log(1000))


@pytest.fixture(scope='module')
def speech():
    """The real recorded utterance pysptk ships (CMU ARCTIC a0007, 16 kHz, 4 s)."""
    wave, rate = soundfile.read(pysptk.util.example_audio_file())
    assert rate == 16000
    return wave


def reference_spectrogram(excerpt):
    """SPEC steps 2-6 written out plainly, one frame at a time, in float64 with numpy.fft.fft."""
    excerpt = numpy.asarray(excerpt, dtype=numpy.float64)
    assert len(excerpt) == 16896
    low, high = excerpt.min(), excerpt.max()
    if high == low:
        return None
    scaled = 2 * (excerpt - low) / (high - low) - 1  # step 2
    if math.sqrt(numpy.mean(scaled ** 2)) > 0.5:
        return None
    window = numpy.hamming(1024)
    result = numpy.empty((32, 256))
    for t in range(32):  # step 3
        frame = scaled[t * 512:t * 512 + 1024] * window
        magnitude = numpy.abs(numpy.fft.fft(frame)) / 1024  # step 4
        kept = magnitude[1:257]  # step 5
        result[t] = -numpy.log(numpy.maximum(kept, 1e-3))  # step 6
    return result


def reference_inverse(spectrogram, spectrum):
    """Magnitude exp(-s) * 1024 at bins 1..256 with the given phase, inverse FFT per frame,
    Hamming window, overlap-add at hop 512, divided by the overlap-added squared window."""
    frames = len(spectrogram)
    window = numpy.hamming(1024)
    out = numpy.zeros((frames - 1) * 512 + 1024)
    norm = numpy.zeros_like(out)
    for t in range(frames):
        full = numpy.zeros(513, dtype=complex)
        full[1:257] = numpy.exp(-spectrogram[t].astype(numpy.float64)) * 1024 \
            * numpy.exp(1j * numpy.angle(spectrum[t, 1:257]))
        out[t * 512:t * 512 + 1024] += numpy.fft.irfft(full, 1024) * window
        norm[t * 512:t * 512 + 1024] += window ** 2
    return out / norm


def speech_excerpts(speech):
    offsets = [0, 5000, 16896, 30000, len(speech) - 16896]
    return [speech[offset:offset + 16896] for offset in offsets]


def test_constants_follow_the_record():
    assert (S.SAMPLE_RATE, S.FRAME_LENGTH, S.HOP_LENGTH, S.FRAMES, S.BINS) == \
        (16000, 1024, 512, 32, 256)
    assert S.EXCERPT_LENGTH == 1024 + 31 * 512 == 16896
    assert S.FLOOR == 1e-3
    assert S.WINDOW.dtype == numpy.float32
    numpy.testing.assert_allclose(S.WINDOW, numpy.hamming(1024), atol=1e-7)


def test_matches_a_per_frame_reference_on_real_speech(speech):
    excerpts = speech_excerpts(speech)
    references = [reference_spectrogram(excerpt) for excerpt in excerpts]
    assert all(reference is not None for reference in references)
    batch = S.to_spectrograms(numpy.stack(excerpts))
    assert batch.shape == (len(excerpts), 1, 32, 256) and batch.dtype == numpy.float32
    for excerpt, reference, batched in zip(excerpts, references, batch):
        single = S.to_spectrogram(excerpt)
        assert single.shape == (1, 32, 256) and single.dtype == numpy.float32
        assert numpy.abs(single[0] - reference).max() < 1e-4
        assert numpy.abs(batched[0] - reference).max() < 1e-4
    # As SPEC.md notes for this utterance: most bins sit at the floor.
    assert 0.5 < numpy.mean(batch >= LN_1000) < 0.9


def test_one_kilohertz_sine_peaks_at_bin_64(speech):
    t = numpy.arange(16896) / 16000
    # A full-scale pure tone is rejected by the RMS rule (RMS 0.707 > 0.5); a swelling tone
    # (Hann envelope, RMS 0.43) is accepted.
    tone = numpy.hanning(16896) * numpy.sin(2 * numpy.pi * 1000 * t)
    s = S.to_spectrogram(tone)[0]
    numpy.testing.assert_array_equal(s.argmin(axis=1), 63)  # bin 64, 1000 Hz, loudest = smallest
    assert s.max() == LN_1000  # bins far from the tone sit exactly at the floor
    assert s.min() >= 0 and s.max() <= LN_1000
    speech_values = S.to_spectrograms(numpy.stack(speech_excerpts(speech)))
    assert speech_values.min() >= 0 and speech_values.max() <= LN_1000


def test_normalize_scales_into_minus_one_one(speech):
    excerpt = speech[1000:1000 + 16896] * 0.01 + 0.3
    scaled = S.normalize(excerpt)
    assert scaled.dtype == numpy.float32 and scaled.shape == excerpt.shape
    assert scaled.min() == -1 and scaled.max() == 1
    expected = 2 * (excerpt - excerpt.min()) / (excerpt.max() - excerpt.min()) - 1
    numpy.testing.assert_allclose(scaled, expected, atol=1e-6)
    # Scaling does not change the spectrogram: the record scales every excerpt first.
    numpy.testing.assert_allclose(S.to_spectrogram(excerpt), S.to_spectrogram(speech[1000:17896]),
                                  atol=1e-4)


def test_silence_rules_reject():
    t = numpy.arange(16896) / 16000
    assert S.normalize(numpy.zeros(16896)) is None  # max == min
    assert S.normalize(numpy.full(16896, 0.25)) is None  # DC
    assert S.normalize(numpy.sin(2 * numpy.pi * 1000 * t)) is None  # RMS 0.707 after scaling
    assert S.normalize(numpy.sign(numpy.sin(2 * numpy.pi * 100 * t))) is None  # square wave
    noisy = numpy.random.default_rng(0).normal(size=16896)
    noisy[5] = numpy.nan
    assert S.normalize(noisy) is None


def test_errors_for_wrong_length_and_rejected_excerpts(speech):
    with pytest.raises(ValueError, match='16896'):
        S.to_spectrogram(speech[:16895])
    with pytest.raises(ValueError, match='16896'):
        S.to_spectrogram(numpy.stack([speech[:16896]]))
    with pytest.raises(ValueError, match='silence'):
        S.to_spectrogram(numpy.zeros(16896))
    batch = numpy.stack([speech[:16896], numpy.zeros(16896), speech[20000:36896],
                         numpy.ones(16896)])
    with pytest.raises(ValueError, match=r'2 of 4 .*index 1, 3'):
        S.to_spectrograms(batch)
    with pytest.raises(ValueError):
        S.to_spectrograms(speech[:16896])


def test_magnitude_and_spectrogram_are_inverse_pairs(speech):
    spectrum = S.stft(speech[:16896])
    assert spectrum.shape == (32, 513)
    magnitude = numpy.abs(spectrum)
    s = S.magnitude_to_spectrogram(magnitude)
    assert s.shape == (32, 256)
    numpy.testing.assert_array_equal(s, S.magnitude_to_spectrogram(magnitude[:, 1:257]))
    back = S.spectrogram_to_magnitude(s)
    assert back.shape == (32, 513)
    assert not back[:, 0].any() and not back[:, 257:].any()
    numpy.testing.assert_allclose(back[:, 1:257], numpy.maximum(magnitude[:, 1:257], 1.024),
                                  rtol=1e-5)


def test_istft_inverts_stft(speech):
    wave = speech[:16896 + 300].astype(numpy.float32)
    rebuilt = S.istft(S.stft(wave))
    assert len(rebuilt) == 16896  # trailing samples that fill no frame are not covered
    assert numpy.abs(rebuilt - wave[:16896]).max() < 1e-5


def test_true_phase_gives_back_the_band_limited_excerpt(speech):
    excerpt = S.normalize(speech[30000:30000 + 16896])
    s = S.to_spectrogram(excerpt)
    spectrum = S.stft(excerpt)
    wave = S.to_wave(s, phase=spectrum)
    assert wave.dtype == numpy.float32 and wave.shape == (16896,)
    # Exactly the magnitude x phase inverse, computed independently ...
    assert numpy.abs(wave - reference_inverse(s[0], spectrum)).max() < 1e-4
    # ... with the phase given in any of the documented forms ...
    numpy.testing.assert_allclose(S.to_wave(s, phase=numpy.angle(spectrum)), wave, atol=1e-5)
    numpy.testing.assert_allclose(S.to_wave(s, phase=spectrum[:, 1:257]), wave, atol=1e-5)
    # ... and close to the excerpt band-limited to bins 1..256 (DC and above 4 kHz removed);
    # what differs is the floor: bins quieter than 1e-3 (61 % here) come back at 1e-3, which
    # costs about 15-20 dB of signal-to-error ratio on this utterance.
    band = spectrum.copy()
    band[:, 0] = 0
    band[:, 257:] = 0
    band_limited = S.istft(band)
    error = numpy.sqrt(numpy.mean((wave - band_limited) ** 2) / numpy.mean(band_limited ** 2))
    assert error < 0.2
    assert numpy.corrcoef(wave, band_limited)[0, 1] > 0.98


def test_griffin_lim_converges_and_is_deterministic(speech):
    s = S.to_spectrogram(speech[30000:30000 + 16896])
    target = S.spectrogram_to_magnitude(s[0])
    convergence = [S.spectral_convergence(target, S.to_wave(s, n_iter=n)) for n in (0, 5, 30, 100)]
    assert all(a > b for a, b in zip(convergence, convergence[1:])), convergence
    assert convergence[-1] < 0.06
    first = S.to_wave(s, n_iter=20)
    numpy.testing.assert_array_equal(first, S.to_wave(s, n_iter=20))
    assert first.dtype == numpy.float32 and first.shape == (16896,)
    numpy.testing.assert_array_equal(first, S.to_wave(s[0], n_iter=20))


@pytest.mark.parametrize('frames', [1, 2, 7, 124])
def test_to_wave_takes_any_number_of_frames(speech, frames):
    s = S.utterance_to_spectrogram(speech)
    assert s.shape == (1, 1 + (len(speech) - 1024) // 512, 256)  # 124 frames for 4 s
    part = s[0, :frames]
    wave = S.to_wave(part, n_iter=10)
    assert wave.shape == ((frames - 1) * 512 + 1024,) and wave.dtype == numpy.float32
    assert numpy.isfinite(wave).all()
    assert S.spectral_convergence(S.spectrogram_to_magnitude(part), wave) < 0.5


def test_utterance_spectrogram_matches_excerpt_steps(speech):
    excerpt = S.normalize(speech[:16896])
    numpy.testing.assert_array_equal(S.utterance_to_spectrogram(excerpt, scale=False),
                                     S.normalized_to_spectrograms(excerpt))
    whole = S.utterance_to_spectrogram(speech)
    scaled = 2 * (speech - speech.min()) / (speech.max() - speech.min()) - 1
    assert numpy.abs(whole[0, :32] - reference_spectrogram_unscaled(scaled[:16896])).max() < 1e-4
    with pytest.raises(ValueError):
        S.utterance_to_spectrogram(numpy.zeros(5000))


def reference_spectrogram_unscaled(wave):
    window = numpy.hamming(1024)
    return numpy.stack([
        -numpy.log(numpy.maximum(numpy.abs(numpy.fft.fft(wave[t * 512:t * 512 + 1024] * window))
                                 [1:257] / 1024, 1e-3)) for t in range(32)])


def test_bad_shapes_raise():
    with pytest.raises(ValueError):
        S.to_wave(numpy.zeros((32, 255)))
    with pytest.raises(ValueError):
        S.to_wave(numpy.zeros((0, 256)))
    with pytest.raises(ValueError):
        S.to_wave(numpy.zeros((32, 256)), phase=numpy.zeros((31, 513)))
    with pytest.raises(ValueError):
        S.stft(numpy.zeros(1000))
