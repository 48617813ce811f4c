"""common.audio: decoding any rate, format and channel count to 16 kHz mono (SPEC step 1),
one-line errors for unusable files, atomic 16-bit WAV writing.  Every file is written here."""
import io
import os

from common import compat

compat.apply()  # again here: pytest restores the warning filters that conftest's import set

import numpy
import pysptk
import pytest
import soundfile

from common import audio

DURATION = 0.75  # seconds of each test file


def tone(rate, frequency=440.0, duration=DURATION):
    t = numpy.arange(int(round(rate * duration))) / rate
    return 0.5 * numpy.sin(2 * numpy.pi * frequency * t)


def dominant_frequency(wave, rate=16000):
    spectrum = numpy.abs(numpy.fft.rfft(wave * numpy.hanning(len(wave))))
    return numpy.fft.rfftfreq(len(wave), 1 / rate)[numpy.argmax(spectrum)]


FORMATS = [  # (extension, soundfile format, subtype): every sample format the issue names
    ('wav', 'WAV', 'PCM_U8'),
    ('wav', 'WAV', 'PCM_16'),
    ('wav', 'WAV', 'PCM_24'),
    ('wav', 'WAV', 'PCM_32'),
    ('wav', 'WAV', 'FLOAT'),
    ('wav', 'WAV', 'DOUBLE'),
    ('flac', 'FLAC', 'PCM_S8'),
    ('flac', 'FLAC', 'PCM_16'),
    ('flac', 'FLAC', 'PCM_24'),
    ('ogg', 'OGG', 'VORBIS'),
]


@pytest.mark.parametrize('rate', [8000, 16000, 22050, 44100, 48000])
@pytest.mark.parametrize('extension,container,subtype', FORMATS,
                         ids=['%s-%s' % (f[0], f[2]) for f in FORMATS])
def test_any_rate_and_format_comes_back_at_16_khz(tmp_path, rate, extension, container, subtype):
    path = tmp_path / ('tone.%s' % extension)
    soundfile.write(path, tone(rate), rate, format=container, subtype=subtype)
    wave = audio.load(path)
    assert wave.dtype == numpy.float32 and wave.ndim == 1
    assert abs(len(wave) - DURATION * 16000) <= 1
    assert abs(dominant_frequency(wave) - 440) < 3
    assert 0.4 < numpy.abs(wave).max() < 0.6


@pytest.mark.parametrize('channels', [2, 4])
def test_channels_are_averaged(tmp_path, channels):
    left = tone(44100)
    gains = numpy.array([1.0, 0.5, 0.0, 0.25][:channels])
    path = tmp_path / 'multi.flac'
    soundfile.write(path, left[:, None] * gains, 44100, subtype='PCM_24')
    wave = audio.load(path)
    mono_path = tmp_path / 'mono.flac'
    soundfile.write(mono_path, left * gains.mean(), 44100, subtype='PCM_24')
    numpy.testing.assert_allclose(wave, audio.load(mono_path), atol=1e-4)



@pytest.mark.parametrize('extension,subtype', [('wav', 'PCM_16'), ('flac', 'PCM_24')])
def test_channels_in_anti_phase_give_the_signal_not_silence(tmp_path, extension, subtype):
    # L = x, R = -x (one channel wired with inverted polarity): the average is all zeros, but
    # each channel carries the whole recording.
    speech, _ = soundfile.read(pysptk.util.example_audio_file())
    mono_path = tmp_path / ('mono.%s' % extension)
    soundfile.write(mono_path, speech, 16000, subtype=subtype)
    for name, channels in [('inverted_right', [speech, -speech]),
                           ('inverted_left', [-speech, speech]),
                           ('almost_cancelling', [speech, -0.9 * speech])]:
        path = tmp_path / ('%s.%s' % (name, extension))
        soundfile.write(path, numpy.stack(channels, axis=1), 16000, subtype=subtype)
        wave, expected = audio.load(path), audio.load(mono_path)
        if name != 'almost_cancelling':  # equally loud: either polarity is the recording
            expected *= numpy.sign(numpy.dot(wave, expected))
        numpy.testing.assert_allclose(wave, expected, atol=2e-4, err_msg=name)


def test_uncorrelated_channels_are_averaged_not_replaced(tmp_path):
    # Two different signals (two talkers, or noise on one side): the average keeps both.
    rng = numpy.random.RandomState(0)
    left, right = tone(16000), 0.3 * rng.uniform(-1, 1, int(16000 * DURATION))
    path = tmp_path / 'two.wav'
    soundfile.write(path, numpy.stack([left, right], axis=1), 16000, subtype='FLOAT')
    numpy.testing.assert_allclose(audio.load(path), (left + right) / 2, atol=1e-6)


@pytest.mark.parametrize('samples,rate', [([0.5], 16000), ([0.5], 44100), ([0.5], 8000),
                                          ([0.5, -0.25], 44100), ([0.1, 0.2, -0.3], 48000)])
def test_too_short_for_two_samples_at_16_khz_is_an_error_not_silence(tmp_path, samples, rate):
    # One sample can be neither silent nor a signal, and resampling 44.1 kHz to 16 kHz turns
    # two samples into fewer than two: both are reported as what they are.
    path = tmp_path / 'short.wav'
    soundfile.write(path, numpy.array(samples), rate, subtype='FLOAT')
    with pytest.raises(audio.AudioError) as caught:
        audio.load(path)
    message = str(caught.value)
    assert message.startswith(str(path) + ': too short (%d sample' % len(samples)), message
    assert 'at %d Hz' % rate in message and 'silent' not in message, message


@pytest.mark.parametrize('samples,rate,expected', [([0.5, -0.25], 16000, 2),
                                                   ([0.5, -0.25], 8000, 4),
                                                   ([0.1, 0.2, -0.3, 0.4, 0.0, -0.1], 44100, 3)])
def test_shortest_loadable_files(tmp_path, samples, rate, expected):
    path = tmp_path / 'short.wav'
    soundfile.write(path, numpy.array(samples), rate, subtype='FLOAT')
    assert len(audio.load(path)) == expected

def test_real_speech_at_16_khz_is_unchanged():
    path = pysptk.util.example_audio_file()
    samples, rate = soundfile.read(path, dtype='float32')
    assert rate == 16000
    numpy.testing.assert_array_equal(audio.load(path), samples)


def test_resampling_keeps_speech_band(tmp_path):
    speech, _ = soundfile.read(pysptk.util.example_audio_file())
    # Speech taken up to 48 kHz (scipy, independently of audio.load) and brought back down.
    import scipy.signal
    high = scipy.signal.resample_poly(speech, 3, 1)
    soundfile.write(tmp_path / 'speech48k.wav', high, 48000, subtype='FLOAT')
    back = audio.load(tmp_path / 'speech48k.wav')
    assert len(back) == len(speech)
    error = numpy.sqrt(numpy.mean((back - speech) ** 2) / numpy.mean(speech ** 2))
    assert error < 0.01


def encoded(wave, rate, container, subtype):
    stream = io.BytesIO()
    soundfile.write(stream, wave, rate, format=container, subtype=subtype)
    return stream.getvalue()


def bad_files(folder):
    """(path, expected words in the reason) for each kind of unusable file."""
    speech, _ = soundfile.read(pysptk.util.example_audio_file())
    cases = []

    def add(name, data, words):
        path = folder / name
        path.write_bytes(data)
        cases.append((path, words))

    add('not_audio.wav', b'this is a text file, not a recording\n' * 20, 'not readable')
    add('zero_length.flac', b'', 'empty')
    for container, subtype, extension in [('WAV', 'PCM_16', 'wav'), ('FLAC', 'PCM_16', 'flac'),
                                          ('OGG', 'VORBIS', 'ogg')]:
        data = encoded(speech, 16000, container, subtype)
        add('truncated.%s' % extension, data[:len(data) * 2 // 3], 'truncated')
        add('header_only.%s' % extension, data[:30], 'not readable')
    with_nan = speech.copy()
    with_nan[1234] = numpy.nan
    add('nan.wav', encoded(with_nan, 16000, 'WAV', 'FLOAT'), 'NaN or Inf')
    with_inf = speech.copy()
    with_inf[4321] = -numpy.inf
    add('inf.wav', encoded(with_inf, 16000, 'WAV', 'DOUBLE'), 'NaN or Inf')
    add('silent.flac', encoded(numpy.zeros(32000), 16000, 'FLAC', 'PCM_16'), 'silent')
    add('silent_stereo.wav', encoded(numpy.zeros((32000, 2)), 48000, 'WAV', 'PCM_24'), 'silent')
    return cases


def test_each_bad_file_raises_a_one_line_audio_error(tmp_path):
    for path, words in bad_files(tmp_path):
        with pytest.raises(audio.AudioError) as caught:
            audio.load(path)
        message = str(caught.value)
        assert message.startswith(str(path) + ': '), message
        assert words in message, message
        assert '\n' not in message
        assert caught.value.path == str(path)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(audio.AudioError, match='cannot open'):
        audio.load(tmp_path / 'missing.wav')
    with pytest.raises(audio.AudioError, match='folder'):
        audio.load(tmp_path)


def test_save_writes_16_bit_pcm_and_lowers_loud_waves_instead_of_clipping(tmp_path):
    path = tmp_path / 'out.wav'
    assert audio.save(path, numpy.array([0.0, 0.5, -0.5, 1.0], dtype=numpy.float32)) == 0.0
    info = soundfile.info(path)
    assert (info.format, info.subtype, info.samplerate, info.channels) == \
        ('WAV', 'PCM_16', 16000, 1)
    pcm, _ = soundfile.read(path, dtype='int16')
    numpy.testing.assert_array_equal(pcm, [0, 16384, -16384, 32767])  # within full scale: as is

    wave = numpy.array([0.0, 0.5, -0.5, 1.5, -2.0, 1.0], dtype=numpy.float32)
    gain = audio.save(path, wave)
    assert gain == pytest.approx(20 * numpy.log10(audio.PEAK_LIMIT / 2.0))
    pcm, _ = soundfile.read(path, dtype='int16')
    # Lowered as a whole (peak 2.0 -> PEAK_LIMIT), the shape kept: no sample clipped.
    numpy.testing.assert_array_equal(pcm, numpy.round(wave / 2.0 * audio.PEAK_LIMIT * 32767))
    assert audio.describe_gain(gain) == ' (lowered 6.1 dB to fit full scale)'
    assert audio.describe_gain(0.0) == ''
    audio.save(path, numpy.zeros(10), sample_rate=8000)  # replaces the file
    assert soundfile.info(path).samplerate == 8000
    assert os.listdir(tmp_path) == ['out.wav']


def test_save_round_trip(tmp_path):
    speech, _ = soundfile.read(pysptk.util.example_audio_file(), dtype='float32')
    audio.save(tmp_path / 'speech.wav', speech)
    numpy.testing.assert_allclose(audio.load(tmp_path / 'speech.wav'), speech, atol=1 / 32767)


def test_save_leaves_nothing_on_error(tmp_path):
    path = tmp_path / 'kept.wav'
    audio.save(path, numpy.full(100, 0.25))
    before = path.read_bytes()
    with pytest.raises(ValueError, match='NaN'):
        audio.save(path, numpy.array([0.0, numpy.nan]))
    with pytest.raises(ValueError):
        audio.save(path, numpy.zeros((10, 2)))
    with pytest.raises(ValueError):
        audio.save(path, numpy.zeros(10), sample_rate=-5)
    with pytest.raises(OSError):
        audio.save(tmp_path / 'no_such_folder' / 'x.wav', numpy.zeros(10))
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ['kept.wav']
