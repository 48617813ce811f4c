"""The experiment's input spectrogram and its way back to audio (SPEC.md, "Input spectrogram").

This module is the one place for the facts of the procedure: sample rate, frame length, hop,
number of frames, number of kept bins, excerpt length and the log floor.  Everything is CPU NumPy
(scipy.fft for the transforms); Chainer moves batches to the GPU through its converter.

The steps of SPEC.md, and where each one is implemented:

1. resample to 16000 Hz mono ......................... :func:`common.audio.load`
2. excerpt of 16896 samples, min-max scaled to [-1, 1],
   rejected as silence when max == min or RMS > 0.5 ... :func:`normalize`, normalize_batch
3. 32 frames of 1024 samples, hop 512, Hamming window . :func:`frame`, :func:`stft`
4. |FFT| / 1024 ....................................... :func:`stft`, magnitude_to_spectrogram
5. bins 1..256 (DC dropped, up to 4000 Hz) ............ :func:`magnitude_to_spectrogram`
6. clip below 1e-3, natural log, negate ............... :func:`magnitude_to_spectrogram`

:func:`to_spectrogram` (one excerpt) and :func:`to_spectrograms` (a batch) run steps 2-6;
:func:`utterance_to_spectrogram` runs them on a whole utterance of any length.
:func:`to_wave` goes back: it inverts step 6 (:func:`spectrogram_to_magnitude`) and takes the
phase from the caller or from fast Griffin-Lim, then inverts steps 3-4 (:func:`istft`).

Magnitudes are un-normalised |X| throughout (step 4's division by 1024 happens inside
:func:`magnitude_to_spectrogram` and is undone by :func:`spectrogram_to_magnitude`).
"""
import math

import numpy
import scipy.fft
from numpy.lib.stride_tricks import sliding_window_view

SAMPLE_RATE = 16000  # step 1: Hz
FRAME_LENGTH = 1024  # step 3: samples per frame, also the FFT size and step 4's divisor
HOP_LENGTH = 512  # step 3: samples between frame starts
FRAMES = 32  # step 3: frames per excerpt
BINS = 256  # step 5: kept FFT bins, 1..256
EXCERPT_LENGTH = FRAME_LENGTH + (FRAMES - 1) * HOP_LENGTH  # step 2: 16896 samples
FLOOR = 1e-3  # step 6: normalised magnitudes below this are clipped up to it
FFT_BINS = FRAME_LENGTH // 2 + 1  # 513 bins of a real FFT of one frame (DC .. Nyquist)
FIRST_BIN = 1  # step 5: the DC bin 0 is dropped
MAX_VALUE = -math.log(FLOOR)  # step 6: ln 1000 = 6.908, the value of a bin at the floor
MAX_RMS = 0.5  # step 2: a scaled excerpt with a larger RMS is rejected as silence
WINDOW = numpy.hamming(FRAME_LENGTH).astype(numpy.float32)  # step 3 (Decision: numpy.hamming)

GRIFFIN_LIM_MOMENTUM = 0.99  # alpha of fast Griffin-Lim (Perraudin et al. 2013)
GRIFFIN_LIM_SEED = 0  # the initial phase of Griffin-Lim is random from this fixed seed

assert EXCERPT_LENGTH == 16896
assert HOP_LENGTH * 2 == FRAME_LENGTH  # istft's overlap-add relies on 50 % overlap


def n_frames(n_samples):
    """Number of whole frames (step 3: 1024 samples, hop 512, no padding) in n_samples."""
    if n_samples < FRAME_LENGTH:
        return 0
    return 1 + (n_samples - FRAME_LENGTH) // HOP_LENGTH


def wave_length(frame_count):
    """Number of samples covered by frame_count frames: (T - 1) * 512 + 1024."""
    return (frame_count - 1) * HOP_LENGTH + FRAME_LENGTH


# ---------------------------------------------------------------------------------------------
# Step 2: excerpt scaling and the silence rules


def normalize_batch(excerpts):
    """SPEC step 2 on each row of a (N, L) array, vectorised.

    Returns (scaled, accepted): the min-max scaled rows as float32 (N, L), and a bool (N,) mask
    of the rows the silence rules accept (max > min, finite, RMS of the scaled row <= 0.5).
    Rejected rows hold meaningless values.
    """
    excerpts = numpy.asarray(excerpts)
    if excerpts.dtype != numpy.float64:  # float64 input is scaled in float64, then rounded
        excerpts = excerpts.astype(numpy.float32, copy=False)
    if excerpts.ndim != 2 or excerpts.shape[1] == 0:
        raise ValueError('normalize_batch takes (N, L) excerpts, got shape %s' % (excerpts.shape,))
    low = excerpts.min(axis=1, keepdims=True)
    span = excerpts.max(axis=1, keepdims=True) - low
    usable_span = numpy.isfinite(span) & (span > 0)
    half_span = numpy.where(usable_span, span / 2, 1).astype(excerpts.dtype)
    with numpy.errstate(invalid='ignore', over='ignore'):
        # (x - min) / ((max - min) / 2) - 1 in place.  Rounding is monotonic and
        # (max - min) / ((max - min) / 2) is exactly 2, so the rows span exactly [-1, 1].
        scaled = numpy.subtract(excerpts, low)
        scaled /= half_span
        scaled -= 1
        scaled = scaled.astype(numpy.float32, copy=False)
        mean_square = numpy.einsum('ij,ij->i', scaled, scaled) / scaled.shape[1]
    accepted = usable_span[:, 0] & (mean_square <= MAX_RMS ** 2)
    return scaled, accepted


def normalize(excerpt):
    """SPEC step 2: scale an excerpt into [-1, 1] by min-max, or reject it as silence.

    x' = 2 (x - min) / (max - min) - 1.  Returns the scaled excerpt as float32, or None when the
    record's silence rules reject it: max == min (a DC signal), or the RMS of the scaled excerpt
    is above 0.5.  Excerpts with NaN or Inf samples are rejected too.  Any length is accepted; the
    spectrogram functions check for EXCERPT_LENGTH.
    """
    excerpt = numpy.asarray(excerpt)
    if excerpt.ndim != 1 or excerpt.size == 0:
        raise ValueError('normalize takes a non-empty 1-D excerpt, got shape %s' % (excerpt.shape,))
    scaled, accepted = normalize_batch(excerpt[None])
    return scaled[0] if accepted[0] else None


# ---------------------------------------------------------------------------------------------
# Steps 3-6


def frame(waves):
    """SPEC step 3 without the window: (..., L) waves -> (..., T, 1024) frames, hop 512.

    A strided view (no copy) of the input; T = 1 + (L - 1024) // 512, trailing samples that do
    not fill a frame are ignored.
    """
    waves = numpy.asarray(waves)
    if waves.shape[-1] < FRAME_LENGTH:
        raise ValueError('need at least %d samples for one frame, got %d'
                         % (FRAME_LENGTH, waves.shape[-1]))
    return sliding_window_view(waves, FRAME_LENGTH, axis=-1)[..., ::HOP_LENGTH, :]


def stft(wave):
    """SPEC steps 3-4 before the division: complex FFT of Hamming-windowed frames.

    wave: (..., L) samples (normally 1-D, at 16 kHz).  Returns complex64 (..., T, 513), bins
    0..512 of the real FFT of each 1024-sample frame, hop 512, no padding.  These are the
    un-normalised X: the spectrogram uses |X| / 1024 at bins 1..256.  Used for true-phase
    reconstruction (``to_wave(s, phase=stft(excerpt))``) and for :func:`spectral_convergence`.
    """
    frames = frame(numpy.asarray(wave, dtype=numpy.float32))
    return scipy.fft.rfft(frames * WINDOW, axis=-1, overwrite_x=True)


def magnitude_to_spectrogram(magnitude):
    """SPEC steps 4 (division by 1024), 5 and 6: un-normalised |X| -> log spectrogram.

    magnitude: (..., 513) full real-FFT magnitudes (bins 1..256 are kept), or (..., 256) when
    they are already bins 1..256.  Returns float32 (..., 256): -ln(max(|X| / 1024, 1e-3)),
    values in [0, ln 1000]; loud = small.
    """
    magnitude = numpy.asarray(magnitude)
    if magnitude.shape[-1] == FFT_BINS:
        magnitude = magnitude[..., FIRST_BIN:FIRST_BIN + BINS]
    elif magnitude.shape[-1] != BINS:
        raise ValueError('magnitudes need %d or %d bins on the last axis, got shape %s'
                         % (FFT_BINS, BINS, magnitude.shape))
    normalized = magnitude.astype(numpy.float32) * numpy.float32(1 / FRAME_LENGTH)
    numpy.maximum(normalized, numpy.float32(FLOOR), out=normalized)
    numpy.log(normalized, out=normalized)
    numpy.negative(normalized, out=normalized)
    return normalized


def spectrogram_to_magnitude(spectrogram):
    """Inverse of :func:`magnitude_to_spectrogram` (SPEC step 6 inverted, steps 5 and 4 undone).

    spectrogram: (..., 256).  Returns float32 (..., 513) un-normalised magnitudes: exp(-s) * 1024
    at bins 1..256, zero at the DC bin and above bin 256 (above 4000 Hz).  Bins that were at the
    floor come back as 1e-3 * 1024.
    """
    spectrogram = numpy.asarray(spectrogram, dtype=numpy.float32)
    if spectrogram.shape[-1] != BINS:
        raise ValueError('spectrograms need %d bins on the last axis, got shape %s'
                         % (BINS, spectrogram.shape))
    magnitude = numpy.zeros(spectrogram.shape[:-1] + (FFT_BINS,), dtype=numpy.float32)
    magnitude[..., FIRST_BIN:FIRST_BIN + BINS] = numpy.exp(-spectrogram) * FRAME_LENGTH
    return magnitude


CHUNK = 32  # excerpts transformed per vectorised call: 4 MiB of frames, kept in cache


def _spectrograms_of_scaled(scaled, out):
    """Steps 3-6 for (n, 16896) scaled excerpts into out, float32 (n, 32, 256)."""
    spectrum = scipy.fft.rfft(frame(scaled) * WINDOW, axis=-1, overwrite_x=True)
    magnitude = numpy.abs(spectrum[..., FIRST_BIN:FIRST_BIN + BINS])
    out[...] = magnitude_to_spectrogram(magnitude)


def normalized_to_spectrograms(normalized):
    """SPEC steps 3-6 on excerpts already scaled by :func:`normalize` (step 2).

    normalized: (N, 16896) or (16896,).  Returns float32 (N, 1, 32, 256) or (1, 32, 256):
    (channel, time, frequency).  Vectorised: strided framing and a real FFT over many excerpts
    at once (in chunks of CHUNK excerpts, which keeps the frames in the CPU cache).
    """
    normalized = numpy.asarray(normalized, dtype=numpy.float32)
    if normalized.shape[-1] != EXCERPT_LENGTH or normalized.ndim not in (1, 2):
        raise ValueError('excerpts must be (N, %d) or (%d,), got shape %s'
                         % (EXCERPT_LENGTH, EXCERPT_LENGTH, normalized.shape))
    rows = normalized.reshape(-1, EXCERPT_LENGTH)
    out = numpy.empty((len(rows), 1, FRAMES, BINS), dtype=numpy.float32)
    for start in range(0, len(rows), CHUNK):
        _spectrograms_of_scaled(rows[start:start + CHUNK], out[start:start + CHUNK, 0])
    return out if normalized.ndim == 2 else out[0]


def to_spectrograms(excerpts):
    """SPEC steps 2-6 for a batch: (N, 16896) raw excerpts -> float32 (N, 1, 32, 256).

    Each excerpt is min-max scaled (step 2) and turned into its spectrogram, vectorised over
    the batch (in chunks of CHUNK excerpts).  Raises ValueError for a wrong shape, or naming the
    indices of the excerpts the silence rules reject.
    """
    excerpts = numpy.asarray(excerpts)
    if excerpts.ndim != 2 or excerpts.shape[1] != EXCERPT_LENGTH:
        raise ValueError('excerpts must be (N, %d), got shape %s'
                         % (EXCERPT_LENGTH, excerpts.shape))
    out = numpy.empty((len(excerpts), 1, FRAMES, BINS), dtype=numpy.float32)
    rejected = []
    for start in range(0, len(excerpts), CHUNK):
        scaled, accepted = normalize_batch(excerpts[start:start + CHUNK])
        rejected.extend(start + numpy.flatnonzero(~accepted))
        if not rejected:
            _spectrograms_of_scaled(scaled, out[start:start + CHUNK, 0])
    if rejected:
        shown = ', '.join(str(i) for i in rejected[:10]) + (', ...' if len(rejected) > 10 else '')
        raise ValueError('%d of %d excerpts rejected as silence (max == min, or RMS > %g after '
                         'scaling): index %s' % (len(rejected), len(excerpts), MAX_RMS, shown))
    return out


def to_spectrogram(excerpt):
    """SPEC steps 2-6: one raw excerpt of 16896 samples -> float32 (1, 32, 256).

    The excerpt is min-max scaled first (step 2).  Raises ValueError for a wrong length or an
    excerpt the silence rules reject (max == min, or RMS above 0.5 after scaling).
    """
    excerpt = numpy.asarray(excerpt)
    if excerpt.shape != (EXCERPT_LENGTH,):
        raise ValueError('an excerpt is %d samples (1-D), got shape %s'
                         % (EXCERPT_LENGTH, excerpt.shape))
    scaled = normalize(excerpt)
    if scaled is None:
        raise ValueError('excerpt rejected as silence (max == min, or RMS > %g after scaling)'
                         % MAX_RMS)
    return normalized_to_spectrograms(scaled)


def utterance_to_spectrogram(wave, scale=True):
    """SPEC steps 2-6 applied to a whole utterance: (L,) -> float32 (1, T, 256).

    T = 1 + (L - 1024) // 512 frames.  With scale=True the whole utterance is min-max scaled
    into [-1, 1] (step 2's scaling; the RMS rule is not applied, since it is a rule for picking
    excerpts); only a constant wave raises ValueError.  With scale=False the wave is used as is.
    """
    wave = numpy.asarray(wave, dtype=numpy.float32)
    if wave.ndim != 1 or wave.size < FRAME_LENGTH:
        raise ValueError('an utterance is 1-D with at least %d samples, got shape %s'
                         % (FRAME_LENGTH, wave.shape))
    if scale:
        if not numpy.isfinite(wave).all() or wave.max() == wave.min():
            raise ValueError('utterance is constant or not finite: nothing to scale')
        wave = normalize_batch(wave[None])[0][0]
    return magnitude_to_spectrogram(numpy.abs(stft(wave)[:, FIRST_BIN:FIRST_BIN + BINS]))[None]


# ---------------------------------------------------------------------------------------------
# Back to audio


def istft(spectrum):
    """Inverse of :func:`stft` (steps 3-4 inverted): complex (T, 513) -> float32 wave.

    Each frame is inverse-FFT'd, multiplied by the same Hamming window and overlap-added at hop
    512; the sum is divided by the overlap-added squared window (the least-squares inverse of
    Griffin and Lim 1984), so ``istft(stft(x))`` gives x back exactly over the covered samples.
    Output length (T - 1) * 512 + 1024.
    """
    spectrum = numpy.asarray(spectrum)
    if spectrum.ndim != 2 or spectrum.shape[1] != FFT_BINS or spectrum.shape[0] < 1:
        raise ValueError('istft takes (T, %d) complex frames, got shape %s'
                         % (FFT_BINS, spectrum.shape))
    frames = scipy.fft.irfft(spectrum, n=FRAME_LENGTH, axis=-1).astype(numpy.float32, copy=False)
    frames *= WINDOW
    return _overlap_add(frames) / _window_square_sum(len(frames))


def _overlap_add(frames):
    """Overlap-add (T, 1024) frames at hop 512 (half a frame) into (T + 1) * 512 samples."""
    count = len(frames)
    halves = numpy.zeros((count + 1, HOP_LENGTH), dtype=frames.dtype)
    halves[:-1] += frames[:, :HOP_LENGTH]
    halves[1:] += frames[:, HOP_LENGTH:]
    return halves.reshape(-1)


def _window_square_sum(count):
    """Overlap-added squared Hamming window of `count` frames at hop 512: (count + 1) * 512
    samples, never below 0.08 ** 2 (the Hamming window's end value, squared)."""
    square = WINDOW * WINDOW
    halves = numpy.empty((count + 1, HOP_LENGTH), dtype=numpy.float32)
    halves[0] = square[:HOP_LENGTH]
    halves[1:-1] = square[:HOP_LENGTH] + square[HOP_LENGTH:]
    halves[-1] = square[HOP_LENGTH:]
    return halves.reshape(-1)


def _as_frames(spectrogram):
    """(1, T, 256), (T, 256) or (1, 1, T, 256) -> (T, 256) float32."""
    spectrogram = numpy.asarray(spectrogram, dtype=numpy.float32)
    while spectrogram.ndim > 2 and spectrogram.shape[0] == 1:
        spectrogram = spectrogram[0]
    if spectrogram.ndim != 2 or spectrogram.shape[1] != BINS or spectrogram.shape[0] < 1:
        raise ValueError('to_wave takes a (1, T, %d) or (T, %d) spectrogram, got shape %s'
                         % (BINS, BINS, numpy.shape(spectrogram)))
    if not numpy.isfinite(spectrogram).all():
        raise ValueError('spectrogram has NaN or Inf values')
    return spectrogram


def _unit_phase(phase, count):
    """A caller's phase -> (T, 513) complex unit phasors.

    Accepts complex spectra (their angle is used) or real angles in radians, shaped (T, 513)
    (all real-FFT bins) or (T, 256) (bins 1..256, the only bins with magnitude).
    """
    phase = numpy.asarray(phase)
    if phase.ndim == 3 and phase.shape[0] == 1:
        phase = phase[0]
    if phase.ndim != 2 or phase.shape[0] != count or phase.shape[1] not in (FFT_BINS, BINS):
        raise ValueError('phase must be (%d, %d) or (%d, %d) to match the spectrogram, got shape %s'
                         % (count, FFT_BINS, count, BINS, phase.shape))
    if numpy.iscomplexobj(phase):
        angle = numpy.angle(phase)
    else:
        angle = phase.astype(numpy.float64)
    unit = numpy.ones((count, FFT_BINS), dtype=numpy.complex64)
    if angle.shape[1] == BINS:
        unit[:, FIRST_BIN:FIRST_BIN + BINS] = numpy.exp(1j * angle)
    else:
        unit[:] = numpy.exp(1j * angle)
    return unit


def griffin_lim(magnitude, n_iter=100, momentum=GRIFFIN_LIM_MOMENTUM, seed=GRIFFIN_LIM_SEED):
    """Fast Griffin-Lim (Perraudin, Balazs and Sondergaard 2013): phase for (T, 513) magnitudes.

    c_n = STFT(ISTFT(M exp(i angle(t_{n-1})))), t_n = c_n + momentum (c_n - c_{n-1}), with the
    same Hamming window and hop as :func:`stft`.  The initial phase is uniform random from a fixed
    seed, so the result is deterministic.  n_iter=0 returns the initial phase.  Returns complex64
    (T, 513) unit phasors.
    """
    magnitude = numpy.asarray(magnitude, dtype=numpy.float32)
    rng = numpy.random.default_rng(seed)
    angles = numpy.exp(2j * numpy.pi * rng.random(magnitude.shape)).astype(numpy.complex64)
    previous = numpy.zeros_like(angles)
    for _ in range(int(n_iter)):
        rebuilt = stft(istft(magnitude * angles))
        accelerated = rebuilt - previous * numpy.float32(momentum / (1 + momentum))
        angles = accelerated / (numpy.abs(accelerated) + numpy.float32(1e-12))
        previous = rebuilt
    return angles


def to_wave(spectrogram, n_iter=100, phase=None):
    """Audio of a spectrogram: float32 wave at 16 kHz, length (T - 1) * 512 + 1024.

    spectrogram: (1, 32, 256), (32, 256), or (T, 256) / (1, T, 256) for any T >= 1 (whole
    utterances).  Magnitudes invert step 6 (exp(-s) * 1024 at bins 1..256, DC and bins above
    256 zero: :func:`spectrogram_to_magnitude`).

    phase: None for fast Griffin-Lim with `n_iter` iterations (:func:`griffin_lim`, momentum
    0.99, fixed initial phase: deterministic); or the true phase, given as complex spectra (only
    their angle is used, e.g. ``stft(excerpt)``) or as real angles in radians, shaped (T, 513)
    (all real-FFT bins, as :func:`stft` returns) or (T, 256) (bins 1..256).  The wave is the
    least-squares inverse STFT (:func:`istft`) of magnitude x phase.
    """
    frames = _as_frames(spectrogram)
    magnitude = spectrogram_to_magnitude(frames)
    if phase is None:
        unit = griffin_lim(magnitude, n_iter=n_iter)
    else:
        unit = _unit_phase(phase, len(frames))
    return istft(magnitude * unit)


def spectral_convergence(target_magnitude, wave):
    """Spectral convergence || |STFT(wave)| - M ||_F / ||M||_F of a wave against magnitudes M.

    target_magnitude: un-normalised magnitudes, (T, 513) (all bins: compared at all bins) or
    (T, 256) (bins 1..256: compared there), e.g. ``spectrogram_to_magnitude(s)``.  The wave must
    have exactly T frames (length (T - 1) * 512 + 1024 .. + 511).  0 is a perfect match.
    """
    target = numpy.asarray(target_magnitude, dtype=numpy.float64)
    if target.ndim == 3 and target.shape[0] == 1:
        target = target[0]
    if target.ndim != 2 or target.shape[1] not in (FFT_BINS, BINS):
        raise ValueError('target magnitudes must be (T, %d) or (T, %d), got shape %s'
                         % (FFT_BINS, BINS, target.shape))
    wave = numpy.asarray(wave)
    if n_frames(wave.shape[-1]) != target.shape[0]:
        raise ValueError('wave of %d samples has %d frames, target has %d'
                         % (wave.shape[-1], n_frames(wave.shape[-1]), target.shape[0]))
    magnitude = numpy.abs(stft(wave)).astype(numpy.float64)
    if target.shape[1] == BINS:
        magnitude = magnitude[:, FIRST_BIN:FIRST_BIN + BINS]
    return float(numpy.linalg.norm(magnitude - target) / numpy.linalg.norm(target))
