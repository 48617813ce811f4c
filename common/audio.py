"""Reading and writing audio files (SPEC.md, "Input spectrogram", step 1: 16000 Hz, mono).

:func:`load` decodes recordings (:data:`EXTENSIONS`: the formats libsndfile reads on this
machine, e.g. WAV, FLAC, OGG, MP3) of at most :data:`MAX_SECONDS` through soundfile at any
sample rate and sample format, mixes the channels down to one (:func:`mix_down`) and resamples
to 16 kHz with a polyphase filter.  Anything it cannot use raises :class:`AudioError`, whose
one-line message starts with the path.  :func:`save` writes 16-bit PCM WAV atomically.

Output levels.  A rendered wave (Griffin-Lim of a spectrogram, the AutoEncoder's output) comes
out at the level its spectrogram implies: the level of the min-max scaled input (SPEC step 2,
peak 1) for a spectrogram that matches its input.  An untrained or poor model's output can be far
louder (a spectrogram "loud everywhere" renders at many times full scale).  :func:`save` never
clips: a wave whose peak exceeds full scale is scaled down as a whole, so that its peak sits at
PEAK_LIMIT, and the gain it applied (in dB, 0.0 when none) is returned for the caller to report.
"""
import math
import os
import re

import numpy
import scipy.signal
import soundfile

from common import files
from common.spectrogram import SAMPLE_RATE

_MISSING_DATA = re.compile(r'^data\s*:\s*(\d+)\s*\(should be (\d+)\)', re.MULTILINE)
_STREAMING_DATA_SIZES = (0, 0xFFFFFFFF, 0x7FFFFFFF)  # placeholders of writers that stream WAV
# mix_down: below this fraction of the channels' mean power, the average has cancelled them.
CANCELLED_POWER = 0.25
# load: the fewest samples that can be told apart from silence, in the file and at 16 kHz.
MIN_SAMPLES = 2
# save: the peak a wave louder than full scale is lowered to (-0.09 dBFS), so 16-bit PCM holds it.
PEAK_LIMIT = 0.99

#: The longest recording any tool reads: an hour (57.6 M samples, 230 MB of float32 at 16 kHz).
#: Checked on the header's frames / sample rate before anything is decoded or resampled, and
#: the decoding stops there, so a small file whose header says 1 Hz cannot turn into 13 hours
#: of 16 kHz audio.  The corpus (training, evaluate) skips longer files; reconstruct and
#: latent encode refuse them.
MAX_SECONDS = 3600

#: Which files are recordings, for every tool (the one rule): a file whose extension, in any
#: case, belongs to a format the installed libsndfile reads (``soundfile.available_formats()``,
#: and for Vorbis, Opus and MP3 the codec in ``available_subtypes``): (format, codec or None,
#: extensions).  Not listed although libsndfile may read them: RAW (headerless, so its rate and
#: sample format are unknown), MAT4/MAT5 (``.mat`` files are mostly not audio), HTK (feature
#: files), and its rarer formats (IRCAM, VOC, PAF, SVX, AVR, SD2, the sampler formats); a line
#: here adds one for every tool.
FORMATS = (
    ('WAV', None, ('.wav',)),
    ('FLAC', None, ('.flac',)),
    ('OGG', 'VORBIS', ('.ogg', '.oga')),
    ('OGG', 'OPUS', ('.opus',)),
    ('MP3', 'MPEG_LAYER_III', ('.mp3',)),
    ('AIFF', None, ('.aiff', '.aif', '.aifc')),
    ('CAF', None, ('.caf',)),
    ('AU', None, ('.au',)),
    ('W64', None, ('.w64',)),
    ('RF64', None, ('.rf64',)),
    ('NIST', None, ('.sph',)),
)


def _readable_extensions():
    available = soundfile.available_formats()
    extensions = []
    for name, codec, suffixes in FORMATS:
        if name in available and (codec is None or codec in soundfile.available_subtypes(name)):
            extensions.extend(suffix for suffix in suffixes if suffix not in extensions)
    return tuple(extensions)


#: The extensions of recordings on this machine (lower case, with the dot): see FORMATS.
EXTENSIONS = _readable_extensions()
#: The rule, as the messages state it.
RULE = '%s (what libsndfile %s reads here)' % (', '.join(EXTENSIONS),
                                               soundfile.__libsndfile_version__)


def is_recording(path):
    """Whether ``path`` names a recording by the rule of :data:`FORMATS` (its extension)."""
    return os.path.splitext(os.fspath(path))[1].lower() in EXTENSIONS


def extension_of(path):
    """A file's extension as the messages count it: '.mp3', or '(no extension)'."""
    return os.path.splitext(os.fspath(path))[1].lower() or '(no extension)'


def duration_text(seconds):
    """'13.3 h', '2 min', '4 s'."""
    for unit, scale in (('h', 3600), ('min', 60), ('s', 1)):
        if seconds >= scale or unit == 's':
            return '%.3g %s' % (seconds / scale, unit)


class AudioError(Exception):
    """An audio file that cannot be used: the message is 'PATH: reason', on one line."""

    def __init__(self, path, reason):
        self.path = os.fspath(path)
        self.reason = ' '.join(str(reason).split())  # one line, whatever libsndfile said
        super().__init__('%s: %s' % (self.path, self.reason))


def _truncation(info):
    """Why libsndfile's header report says the file was cut short, or None."""
    extra = info.extra_info or ''
    for declared, present in _MISSING_DATA.findall(extra):
        declared, present = int(declared), int(present)
        if declared > present and declared not in _STREAMING_DATA_SIZES:
            return 'truncated (header declares %d data bytes, file holds %d)' % (declared, present)
    if 'lacks an end-of-stream' in extra:
        return 'truncated (last Ogg page lacks the end-of-stream mark)'
    if 'Junk after the last page' in extra:
        return 'truncated (incomplete Ogg page at the end of the file)'
    return None


def read(path):
    """Decode a file as soundfile sees it: (float32 (frames, channels) samples, sample rate).

    Raises AudioError when the file is missing, empty, not a recording (:func:`is_recording`),
    not audio, truncated, longer than :data:`MAX_SECONDS` (from its header, before decoding),
    or has no samples.  No checks on the sample values (see :func:`load`).
    """
    path = os.fspath(path)
    try:
        size = os.path.getsize(path)
    except OSError as error:
        raise AudioError(path, 'cannot open (%s)' % (error.strerror or error)) from None
    if os.path.isdir(path):
        raise AudioError(path, 'is a folder, not an audio file')
    if not is_recording(path):
        raise AudioError(path, 'not a recording by its extension (%s); recordings are %s'
                         % (extension_of(path), RULE))
    if size == 0:
        raise AudioError(path, 'empty file (0 bytes)')
    try:
        with soundfile.SoundFile(path) as sound:
            truncated = _truncation(sound)
            declared = sound.frames
            rate = sound.samplerate
            if rate <= 0:
                raise AudioError(path, 'invalid sample rate %r' % rate)
            limit = int(MAX_SECONDS * rate)  # frames; the header's count is checked first
            if declared > limit:
                raise AudioError(path, _too_long(declared / rate, '%d frames at %d Hz, from its '
                                                 'header' % (declared, rate)))
            samples = sound.read(frames=limit, dtype='float32', always_2d=True)
    except (soundfile.SoundFileError, RuntimeError, TypeError, ValueError) as error:
        message = str(error)
        prefix = 'Error opening %r: ' % path  # soundfile's own prefix: say the path once
        if message.startswith(prefix):
            message = message[len(prefix):]
        if 'lost sync' in message or 'end of stream' in message.lower():
            raise AudioError(path, 'truncated or corrupt (%s)' % message) from None
        raise AudioError(path, 'not readable as audio (%s)' % message) from None
    except MemoryError:
        raise AudioError(path, 'too large to decode in memory') from None
    if truncated:
        raise AudioError(path, truncated)
    if 0 < declared and len(samples) < declared:
        raise AudioError(path, 'truncated (header declares %d frames, decoded %d)'
                         % (declared, len(samples)))
    if samples.size == 0:
        raise AudioError(path, 'no audio samples')
    return samples, rate


def _too_long(seconds, how):
    return 'too long: %s of audio (%s); a recording may be at most %s (cut it)' % (
        duration_text(seconds), how, duration_text(MAX_SECONDS))


def resample(wave, rate):
    """SPEC step 1: a 1-D wave at `rate` Hz -> float32 at 16000 Hz.

    scipy.signal.resample_poly with the rational factor 16000 / rate reduced by their gcd
    (e.g. 44100 Hz: up 160, down 441), i.e. a Kaiser-windowed polyphase FIR low-pass.
    """
    wave = numpy.asarray(wave, dtype=numpy.float32)
    rate = int(rate)
    if rate == SAMPLE_RATE:
        return wave
    common_factor = math.gcd(SAMPLE_RATE, rate)
    up, down = SAMPLE_RATE // common_factor, rate // common_factor
    return scipy.signal.resample_poly(wave, up, down).astype(numpy.float32, copy=False)


def mix_down(samples):
    """(frames, channels) samples -> one channel: the average, unless the channels cancel.

    The average is what sox, ffmpeg and librosa do, keeps what every channel holds and favours
    none.  It fails when channels are in anti-phase (one wired with inverted polarity: L = x,
    R = -x, each the whole recording), where it leaves silence or a faint residue.  So when the
    average keeps less than CANCELLED_POWER (a quarter, -6 dB) of the channels' mean power
    (mean-removed, so DC offsets do not count), the loudest channel is returned instead.  For
    two equally loud channels the average keeps (1 + r) / 2 of their power, r their correlation:
    one (identical), a half (unrelated, or one silent), below a quarter only for r < -0.5, i.e.
    one channel largely the other inverted.  Polarity is irrelevant to the spectrogram (a
    magnitude).
    """
    if samples.shape[1] == 1:
        return samples[:, 0]
    average = samples.mean(axis=1, dtype=numpy.float64)
    powers = samples.var(axis=0, dtype=numpy.float64)
    if average.var() < CANCELLED_POWER * powers.mean():
        return samples[:, int(numpy.argmax(powers))]
    return average.astype(numpy.float32)


def load(path):
    """SPEC step 1: an audio file -> float32 mono 1-D wave at 16000 Hz.

    Any recording of :data:`EXTENSIONS` up to :data:`MAX_SECONDS`, any sample rate,
    8/16/24/32-bit integer or float samples, any number of channels (:func:`mix_down`: averaged
    unless they cancel).
    Raises AudioError ('PATH: reason') for a missing, empty, non-audio or truncated file, for
    one whose samples are NaN/Inf, for one with fewer than MIN_SAMPLES samples before or after
    resampling (one sample is neither a signal nor silence), and for one whose samples are all
    equal (silent; judged before resampling, whose filter would ripple at the ends).
    """
    path = os.fspath(path)
    samples, rate = read(path)
    if not numpy.isfinite(samples).all():
        raise AudioError(path, 'has NaN or Inf samples')
    mono = mix_down(samples)
    wave = resample(mono, rate)
    if min(len(mono), len(wave)) < MIN_SAMPLES:
        resampled = '' if rate == SAMPLE_RATE else ', %d at %d Hz' % (len(wave), SAMPLE_RATE)
        raise AudioError(path, 'too short (%d sample%s at %d Hz%s; a wave needs at least %d)'
                         % (len(mono), 's'[:len(mono) != 1], rate, resampled, MIN_SAMPLES))
    if mono.max() == mono.min():
        raise AudioError(path, 'all-silent (every sample is %g)' % mono[0])
    return numpy.ascontiguousarray(wave, dtype=numpy.float32)


def fit_to_full_scale(wave):
    """(wave, gain in dB): `wave` lowered as a whole to a peak of PEAK_LIMIT if its peak exceeds
    full scale (1.0), otherwise unchanged with gain 0.0.  Never clips; keeps the wave's shape."""
    wave = numpy.asarray(wave, dtype=numpy.float64)
    peak = float(numpy.max(numpy.abs(wave))) if wave.size else 0.0
    if peak <= 1.0:
        return wave, 0.0
    return wave * (PEAK_LIMIT / peak), 20 * math.log10(PEAK_LIMIT / peak)


def describe_gain(gain_db):
    """'' for no gain, else e.g. ' (lowered 12.3 dB to fit full scale)' for a tool's message."""
    return '' if gain_db == 0 else ' (lowered %.1f dB to fit full scale)' % -gain_db


def save(path, wave, sample_rate=SAMPLE_RATE):
    """Write a mono wave as 16-bit PCM WAV atomically; returns the gain applied, in dB.

    Samples within [-1, 1] are written as they are.  A wave whose peak exceeds full scale is not
    clipped: it is lowered as a whole to a peak of PEAK_LIMIT (:func:`fit_to_full_scale`) and the
    (negative) gain is returned, so callers can say so (:func:`describe_gain`).
    The samples go to a temporary file in the target folder, which is then renamed over `path`
    (os.replace), so `path` is either the old file or the complete new one, and an error leaves
    no partial file.  Raises ValueError for a wave that is not 1-D, empty, or has NaN/Inf samples,
    or a sample rate that is not a positive integer.
    """
    path = os.fspath(path)
    wave = numpy.asarray(wave, dtype=numpy.float64)
    if wave.ndim != 1 or wave.size == 0:
        raise ValueError('%s: save takes a non-empty 1-D wave, got shape %s' % (path, wave.shape))
    if not numpy.isfinite(wave).all():
        raise ValueError('%s: wave has NaN or Inf samples' % path)
    if int(sample_rate) != sample_rate or sample_rate <= 0:
        raise ValueError('%s: sample rate must be a positive integer, got %r' % (path, sample_rate))
    wave, gain_db = fit_to_full_scale(wave)
    pcm = numpy.round(wave * 32767).astype(numpy.int16)
    with files.atomic_write(path) as stream:
        soundfile.write(stream, pcm, int(sample_rate), subtype='PCM_16', format='WAV')
    return gain_db
