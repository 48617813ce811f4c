"""Objective quality of reconstructed speech: mel-cepstral distortion, log-spectral distance,
spectral convergence, intelligibility (STOI, ESTOI), perceptual quality (narrowband PESQ) and
pitch (F0 error in cents, voicing errors, F0 correlation).

The record's author could not hear whether bc7db4a2 sounds better than c9335bce; these numbers
answer that with the field's usual tools (WORLD through pyworld, SPTK through pysptk).

Mel-cepstral distortion (:func:`mel_cepstral_distortion`, :class:`MelCepstrumReference`), in dB
-----------------------------------------------------------------------------------------------
- Analysis: WORLD.  F0 by harvest (default) or dio + stonemask, frame period 5 ms; spectral
  envelope by cheaptrick (its default FFT size for the rate: 1024 at 16 kHz, 512 at 8 kHz).
- Mel-cepstrum: ``pysptk.sp2mc(envelope, order=24, alpha)``, coefficients c_0 .. c_24 of the
  power envelope; alpha = ``pysptk.util.mcepalpha(rate)`` (0.41 at 16 kHz, 0.31 at 8 kHz).
- Per frame: MCD_t = (10 / ln 10) * sqrt(2 * sum_{d=1}^{24} (c_d - c'_d) ** 2).  The 0th
  coefficient (the frame's log power, i.e. loudness) is excluded, as is usual.
- Frames: the two waves must have the same length and timing (renderings of one recording), so
  frame t of one is compared with frame t of the other: no dynamic time warping.
- The F0 contour that sets cheaptrick's pitch-adaptive window is estimated once, on the
  reference (or on ``analysis_wave``), and used for both waves, so F0-tracking errors on the
  degraded wave do not enter the distortion; it measures the spectral envelope only.
- Silent frames are excluded by power: frame t is kept when its power, 10 log10 of the sum of
  the reference's (or ``analysis_wave``'s) cheaptrick envelope, is at most ``silence_db``
  (30 dB) below the loudest frame of that wave.  Unvoiced speech frames above that threshold
  are kept (the rule is by power, not by the voicing decision).
- The result is the mean of MCD_t over the kept frames.  Identical waves give exactly 0.
- ``analysis_rate``: both waves are resampled to this rate before the analysis (default: their
  own rate).  :mod:`common.evaluate` analyses at 8000 Hz (alpha 0.31), because the
  experiment's spectrogram keeps 0-4000 Hz only (SPEC.md step 5): at 16 kHz the empty
  4-8 kHz half of every rendering sits at WORLD's numerical floor (about -95 dB), and its
  arbitrary log values dominate the distortion (white noise at -50 dB added to a band-limited
  recording then scores 20 dB, Griffin-Lim's artefacts 6 dB).

Log-spectral distance (:func:`log_spectral_distance`), in dB
----------------------------------------------------------
On the experiment's spectrograms, (T, 256) or (1, T, 256) or (N, 1, 32, 256): their values are
negated natural-log magnitudes -ln(max(|X| / 1024, 1e-3)) (SPEC.md step 6), so a difference of
1 is a magnitude ratio of e, i.e. 20 / ln 10 = 8.686 dB.  Per frame:
LSD_t = (20 / ln 10) * sqrt(mean over the 256 bins of (s - s') ** 2); the result is the mean of
LSD_t over frames.  Bins at the floor (-60 dB) on both sides count as equal; a constant offset c
between the spectrograms gives 8.686 * |c| dB.  :func:`spectrogram_mse` is the training loss
(mean squared difference of the spectrogram values, in squared log units).

Spectral convergence (:func:`spectral_convergence`)
--------------------------------------------------
|| |STFT(wave)| - M ||_F / || M ||_F over bins 1..256 (0 Hz excluded, up to 4000 Hz), with the
experiment's STFT (Hamming 1024, hop 512) and M the magnitudes of a target spectrogram: for
Griffin-Lim of a spectrogram, how consistent the wave is with it (0 = perfect).  By default the
wave's magnitudes are clipped at the spectrogram's floor as M is (the wave a spectrogram was
computed from then scores exactly 0); clip=False is
:func:`common.spectrogram.spectral_convergence` unchanged.

Common to the measures below
----------------------------
- Alignment: reference and test are renderings of one recording, time-aligned sample for
  sample and of the same length (a different length is refused); nothing is time-warped.
  (PESQ aligns delays itself, as P.862 does; between renderings of one spectrogram there are
  none.)
- Rates: the waves are 16 kHz and band-limited to 0-4000 Hz (the spectrogram's band).  Each
  measure resamples them to its own rate: STOI to 10 kHz (pystoi; its 15 third-octave bands,
  150 Hz to 4.3 kHz, cover the band), PESQ to 8 kHz (narrowband mode), F0 is analysed at
  8 kHz as the MCD is.
- Scale: none of them depends on the waves' absolute level (STOI normalises each 384 ms
  window, PESQ aligns levels, F0 ignores level); the test wave is compared as it is.

STOI and ESTOI (:func:`stoi`), 0..1
----------------------------------
pystoi's implementation of Taal et al. (2011) and, extended, Jensen and Taal (2016).  Frames:
256 samples (25.6 ms) at 10 kHz, hop 128; frames more than 40 dB below the reference's loudest
are removed from both waves; the score is the mean over windows of 30 frames (384 ms) of the
correlation of the third-octave envelopes (STOI: clipped at -15 dB SDR; ESTOI: normalised
spectral rows and columns).  :func:`stoi_windows` counts the windows; a reference with fewer
than 30 frames of speech has none and gets None.  A wave scores 1 against itself.

Narrowband PESQ (:func:`pesq_narrowband`), MOS-LQO about 1.0 .. 4.55
---------------------------------------------------------------------
ITU-T P.862 (the ITU's reference code in the ``pesq`` package: the ``metrics`` extra, built
from source with a C compiler; :func:`pesq_unavailable` says whether it can be imported), both
waves at 8 kHz, the raw score mapped to MOS-LQO by P.862.1.  The experiment keeps 0-4 kHz, so
narrowband (telephone band) is the matching mode: wideband PESQ would count the missing
4-8 kHz of every rendering, the reference included.  A wave scores 4.549 against itself.  P.862
is validated for 8-20 s samples; None where PESQ finds no speech.

F0 (:func:`f0_measures` on contours of :func:`f0_contour`)
------------------------------------------------------------
WORLD F0 (harvest, or dio + stonemask) of each wave, 5 ms frames, frame t of one against frame
t of the other; a frame is voiced where its F0 is > 0.
- ``f0_rmse_cents``: on the frames voiced in both, 1200 log2(f0_test / f0_reference) in cents,
  root mean square.  A copy shifted by s cents scores |s|; an octave error counts 1200, so a
  few such frames dominate it.
- ``vuv_error``: the fraction of all frames (silence included) whose voicing differs.
- ``f0_correlation``: Pearson's correlation of F0 in Hz on the frames voiced in both; None with
  fewer than two such frames or a flat contour.

DNSMOS (:func:`dnsmos_overall`), optional: the ``mos`` extra
-----------------------------------------------------------
DNSMOS P.835's overall score (OVRL) from the ONNX model that speechmos 0.0.1.1 ships, run by
onnxruntime with speechmos' windows (9.01 s every second, short waves repeated) and mapping:
the same score as ``speechmos.dnsmos.run``.  Non-intrusive: it sees the test wave only, at
16 kHz, and was trained on wideband noisy speech; on these band-limited renderings only the
change from the reference's score is reported, and it is no fidelity measure.
"""
import math

import numpy
import scipy.signal

from common import spectrogram as sp

MCEP_ORDER = 24  # mel-cepstrum order: c_0 .. c_24, of which c_1 .. c_24 enter the distortion
FRAME_PERIOD_MS = 5.0  # WORLD frame period
SILENCE_DB = 30.0  # frames more than this below the loudest frame are silent, left out
F0_METHODS = ('harvest', 'dio')  # 'dio' is dio followed by stonemask
MCD_SCALE = 10 / math.log(10) * math.sqrt(2)  # MCD_t = MCD_SCALE * ||c - c'|| (d >= 1)
LSD_SCALE = 20 / math.log(10)  # natural-log magnitude difference -> dB: 8.686


def _wave(wave, name='wave'):
    wave = numpy.asarray(wave, dtype=numpy.float64)
    if wave.ndim != 1 or wave.size == 0:
        raise ValueError('%s must be a non-empty 1-D array, got shape %s' % (name, wave.shape))
    if not numpy.isfinite(wave).all():
        raise ValueError('%s has NaN or Inf samples' % name)
    return numpy.ascontiguousarray(wave)


def resample(wave, sample_rate, target_rate):
    """A float64 wave at sample_rate -> target_rate (polyphase, as :mod:`common.audio`)."""
    sample_rate, target_rate = int(sample_rate), int(target_rate)
    if sample_rate == target_rate:
        return wave
    factor = math.gcd(sample_rate, target_rate)
    return scipy.signal.resample_poly(wave, target_rate // factor, sample_rate // factor)


def mcep_alpha(sample_rate):
    """The all-pass constant of the mel-cepstrum for a sample rate (0.41 at 16 kHz)."""
    import pysptk.util
    return float(pysptk.util.mcepalpha(int(sample_rate)))


def f0_contour(wave, sample_rate, method='harvest', frame_period=FRAME_PERIOD_MS):
    """WORLD F0: (f0, temporal positions), both float64 (frames,); f0 is 0 in unvoiced frames.

    method: 'harvest' (robust, slower) or 'dio' (dio refined by stonemask, fast).
    """
    import pyworld
    wave = _wave(wave)
    if method == 'harvest':
        return pyworld.harvest(wave, int(sample_rate), frame_period=frame_period)
    if method == 'dio':
        f0, times = pyworld.dio(wave, int(sample_rate), frame_period=frame_period)
        return pyworld.stonemask(wave, f0, times, int(sample_rate)), times
    raise ValueError('F0 method must be one of %s, got %r' % (', '.join(F0_METHODS), method))


def spectral_envelope(wave, sample_rate, f0, times):
    """WORLD cheaptrick power envelope, float64 (frames, fft_size // 2 + 1)."""
    import pyworld
    return pyworld.cheaptrick(_wave(wave), f0, times, int(sample_rate))


def mel_cepstrum(envelope, sample_rate, order=MCEP_ORDER, alpha=None):
    """pysptk.sp2mc of a power envelope: (frames, order + 1) mel-cepstra c_0 .. c_order."""
    import pysptk
    alpha = mcep_alpha(sample_rate) if alpha is None else float(alpha)
    return pysptk.sp2mc(numpy.ascontiguousarray(envelope, dtype=numpy.float64), order, alpha)


def frame_power_db(envelope):
    """10 log10 of each frame's summed power envelope, float64 (frames,)."""
    return 10 * numpy.log10(numpy.maximum(numpy.sum(envelope, axis=1), 1e-300))


def speech_frames(envelope, silence_db=SILENCE_DB):
    """Bool (frames,): frames at most silence_db below the loudest frame (the rest: silent)."""
    power = frame_power_db(envelope)
    return power >= power.max() - float(silence_db)


def frame_distortions(reference_mcep, test_mcep):
    """MCD_t in dB for each frame of two aligned (frames, order + 1) mel-cepstra, c_0 left out."""
    reference_mcep = numpy.asarray(reference_mcep, dtype=numpy.float64)
    test_mcep = numpy.asarray(test_mcep, dtype=numpy.float64)
    if reference_mcep.shape != test_mcep.shape:
        raise ValueError('mel-cepstra differ in shape: %s and %s'
                         % (reference_mcep.shape, test_mcep.shape))
    difference = reference_mcep[:, 1:] - test_mcep[:, 1:]
    return MCD_SCALE * numpy.sqrt(numpy.sum(difference * difference, axis=1))


class MelCepstrumReference:
    """A reference wave analysed once, to measure the MCD of one or more test waves against it.

    reference: 1-D wave at sample_rate.  analysis_wave: optional wave of the same length and
    timing whose F0 and frame power decide cheaptrick's pitch-adaptive window and the silent
    frames (default: the reference itself); :mod:`common.evaluate` passes the original
    recording there, because its reference (the input spectrogram with its true phase) has
    silence raised to the spectrogram's floor.  analysis_rate: resample every wave to this rate
    first (default: sample_rate).  Conventions: the module docstring.

    Attributes: ``mask`` (bool, kept frames), ``mcep`` (the reference's mel-cepstra), ``f0``,
    ``times``, ``rate`` (analysis rate), ``alpha``, ``order``.
    """

    def __init__(self, reference, sample_rate=sp.SAMPLE_RATE, f0_method='harvest',
                 order=MCEP_ORDER, alpha=None, silence_db=SILENCE_DB,
                 frame_period=FRAME_PERIOD_MS, analysis_rate=None, analysis_wave=None):
        reference = _wave(reference, 'reference')
        self.length = len(reference)
        self.sample_rate = int(sample_rate)
        self.rate = int(analysis_rate or sample_rate)
        self.order = int(order)
        self.alpha = mcep_alpha(self.rate) if alpha is None else float(alpha)
        if analysis_wave is None:
            timing = reference
        else:
            timing = self._check(analysis_wave, 'analysis_wave')
        timing = resample(timing, self.sample_rate, self.rate)
        self.f0, self.times = f0_contour(timing, self.rate, f0_method, frame_period)
        self.mask = speech_frames(spectral_envelope(timing, self.rate, self.f0, self.times),
                                  silence_db)
        self.mcep = self._mcep(reference)

    def _check(self, wave, name):
        wave = _wave(wave, name)
        if len(wave) != self.length:
            raise ValueError('%s has %d samples, the reference %d: the mel-cepstral distortion '
                             'compares frame-aligned waves of the same length (no time warping)'
                             % (name, len(wave), self.length))
        return wave

    def _mcep(self, wave):
        wave = resample(wave, self.sample_rate, self.rate)
        envelope = spectral_envelope(wave, self.rate, self.f0, self.times)
        return mel_cepstrum(envelope, self.rate, self.order, self.alpha)

    def frame_distortions(self, test):
        """MCD_t in dB of the kept (non-silent) frames of a test wave, float64 (kept,)."""
        test_mcep = self._mcep(self._check(test, 'test wave'))
        return frame_distortions(self.mcep, test_mcep)[self.mask]

    def distortion(self, test):
        """Mel-cepstral distortion in dB of a test wave: mean MCD_t over the kept frames."""
        return float(numpy.mean(self.frame_distortions(test)))


def mel_cepstral_distortion(reference, test, sample_rate=sp.SAMPLE_RATE, f0_method='harvest',
                            order=MCEP_ORDER, alpha=None, silence_db=SILENCE_DB,
                            frame_period=FRAME_PERIOD_MS, analysis_rate=None):
    """Mel-cepstral distortion in dB between two frame-aligned waves of the same length.

    WORLD analysis (F0 by `f0_method` on the reference, used for both; cheaptrick), mel-cepstrum
    of order 24 with alpha for the analysis rate, c_0 and the reference's silent frames (more than
    silence_db below its loudest frame) left out, (10 / ln 10) sqrt(2 sum_d (c_d - c'_d)^2)
    averaged over frames.  See the module docstring for the conventions.
    """
    return MelCepstrumReference(reference, sample_rate, f0_method, order, alpha, silence_db,
                                frame_period, analysis_rate).distortion(test)


# ---------------------------------------------------------------------------------------------
# Spectrogram distances


def _frames(spectrogram, name):
    """(T, 256), (1, T, 256) or (N, 1, 32, 256) spectrograms -> float64 (frames, 256)."""
    spectrogram = numpy.asarray(spectrogram, dtype=numpy.float64)
    if spectrogram.ndim < 2 or spectrogram.shape[-1] != sp.BINS or spectrogram.size == 0:
        raise ValueError('%s must be a spectrogram with %d bins on the last axis, got shape %s'
                         % (name, sp.BINS, spectrogram.shape))
    return spectrogram.reshape(-1, sp.BINS)


def _pair(reference, test):
    reference, test = _frames(reference, 'reference'), _frames(test, 'test')
    if reference.shape != test.shape:
        raise ValueError('spectrograms differ in shape: %s and %s' % (reference.shape, test.shape))
    return reference, test


def frame_log_spectral_distances(reference, test):
    """LSD_t in dB of each frame: (20 / ln 10) * RMS over the 256 bins of the difference."""
    reference, test = _pair(reference, test)
    difference = reference - test
    return LSD_SCALE * numpy.sqrt(numpy.mean(difference * difference, axis=1))


def log_spectral_distance(reference, test):
    """Log-spectral distance in dB between two spectrograms of the experiment (natural-log
    magnitudes, SPEC.md step 6): the mean over frames of (20 / ln 10) * RMS bin difference."""
    return float(numpy.mean(frame_log_spectral_distances(reference, test)))


def spectrogram_mse(reference, test):
    """Mean squared difference of two spectrograms (the training loss, in squared log units)."""
    reference, test = _pair(reference, test)
    return float(numpy.mean((reference - test) ** 2))


def spectral_convergence(target_spectrogram, wave, clip=True):
    """|| |STFT(wave)| - M ||_F / ||M||_F over bins 1..256, M the target spectrogram's magnitudes.

    target_spectrogram: (T, 256) or (1, T, 256); wave: exactly T frames of the experiment's STFT
    (e.g. ``to_wave(target_spectrogram)``, length (T - 1) * 512 + 1024).

    clip=True (default): the wave's magnitudes are clipped at the spectrogram's floor (1e-3 after
    the division by 1024, SPEC.md step 6) as M is, so the measure lives in the spectrogram's own
    domain and the wave the spectrogram was computed from scores exactly 0.  Without the clip
    (clip=False, :func:`common.spectrogram.spectral_convergence` as is) the floor alone adds
    about 0.16 on real speech, where 60-80 % of the bins sit at the floor.
    """
    target = _frames(target_spectrogram, 'target spectrogram')
    magnitude = sp.spectrogram_to_magnitude(target)[:, sp.FIRST_BIN:sp.FIRST_BIN + sp.BINS]
    wave = numpy.asarray(wave, dtype=numpy.float32)
    if not clip:
        return sp.spectral_convergence(magnitude, wave)
    if wave.ndim != 1 or sp.n_frames(wave.shape[-1]) != len(target):
        raise ValueError('wave of shape %s has %d frames, the target spectrogram %d'
                         % (wave.shape, sp.n_frames(wave.shape[-1]), len(target)))
    rendered = sp.spectrogram_to_magnitude(sp.utterance_to_spectrogram(wave, scale=False)[0])
    rendered = rendered[:, sp.FIRST_BIN:sp.FIRST_BIN + sp.BINS].astype(numpy.float64)
    magnitude = magnitude.astype(numpy.float64)
    return float(numpy.linalg.norm(rendered - magnitude) / numpy.linalg.norm(magnitude))


# ---------------------------------------------------------------------------------------------
# Intelligibility (STOI, ESTOI), perceptual quality (narrowband PESQ), pitch (F0, voicing)


def _same_length(reference, test):
    reference, test = _wave(reference, 'reference'), _wave(test, 'test wave')
    if len(reference) != len(test):
        raise ValueError('test wave has %d samples, the reference %d: the measures compare '
                         'time-aligned waves of the same length' % (len(test), len(reference)))
    return reference, test


def _pystoi():
    import importlib
    return importlib.import_module('pystoi.stoi'), importlib.import_module('pystoi.utils')


def stoi_windows(reference, sample_rate=sp.SAMPLE_RATE):
    """How many short-time windows (30 frames of 25.6 ms, 384 ms) STOI averages over for this
    reference: its 10 kHz frames less the silent ones (more than 40 dB below the loudest), less
    29.  0 when there are fewer than 30 frames of speech, where STOI is undefined.  The weight of
    a segment when a long recording's STOI is combined from its segments'."""
    module, utils = _pystoi()
    wave = _wave(reference, 'reference')
    if int(sample_rate) != module.FS:
        wave = utils.resample_oct(wave, module.FS, int(sample_rate))
    wave, _ = utils.remove_silent_frames(wave, wave, module.DYN_RANGE, module.N_FRAME,
                                         module.N_FRAME // 2)
    frames = len(range(0, len(wave) - module.N_FRAME, module.N_FRAME // 2))  # as utils.stft
    return max(0, frames - module.N + 1)


def stoi(reference, test, sample_rate=sp.SAMPLE_RATE, extended=False):
    """STOI (Taal et al. 2011) of a test wave against a time-aligned reference, through pystoi;
    ESTOI (Jensen and Taal 2016) with extended=True.  About 0..1, higher is more intelligible;
    a wave against itself scores 1.  None where the reference has fewer than 30 frames of speech
    (:func:`stoi_windows` is 0)."""
    reference, test = _same_length(reference, test)
    if stoi_windows(reference, sample_rate) == 0:
        return None
    import pystoi
    return float(pystoi.stoi(reference, test, int(sample_rate), extended=bool(extended)))


PESQ_RATE = 8000  # narrowband PESQ: the experiment's spectrogram keeps 0-4000 Hz
PESQ_INSTALL = 'pip install -e ".[metrics]", which needs a C compiler'


def pesq_unavailable():
    """None when narrowband PESQ can be computed here, otherwise the reason, in one line."""
    try:
        import pesq  # noqa: F401
    except ImportError as error:
        return 'the pesq package cannot be imported (%s); %s' % (error, PESQ_INSTALL)
    return None


def pesq_narrowband(reference, test, sample_rate=sp.SAMPLE_RATE):
    """Narrowband PESQ (ITU-T P.862 through the pesq package, MOS-LQO by P.862.1's mapping,
    about 1.0 to 4.55) of a test wave against a time-aligned reference, both resampled to
    8000 Hz.  A wave against itself scores 4.55.  P.862 aligns the levels and the delays itself.
    None where PESQ finds no speech in the reference or the wave is too short for it."""
    import pesq
    reference, test = _same_length(reference, test)
    if not reference.any():  # the pesq package would divide by zero
        return None
    reference = resample(reference, sample_rate, PESQ_RATE)
    test = resample(test, sample_rate, PESQ_RATE)
    try:
        return float(pesq.pesq(PESQ_RATE, reference, test, 'nb'))
    except (pesq.NoUtterancesError, pesq.BufferTooShortError):
        return None


CENTS_PER_OCTAVE = 1200


def f0_measures(reference_f0, test_f0):
    """Pitch of a test wave against a reference, from two frame-aligned F0 contours (Hz, 0 in
    unvoiced frames; WORLD's, :func:`f0_contour`).  A dict of:

    - ``f0_rmse_cents``: sqrt(mean((1200 log2(f0_test / f0_reference)) ** 2)) over the frames
      voiced in both (None when there are none);
    - ``vuv_error``: the fraction of all frames whose voicing (f0 > 0) differs;
    - ``f0_correlation``: Pearson's correlation of the F0 in Hz over the frames voiced in both
      (None with fewer than 2 such frames or a constant F0 on either side);
    - ``voiced_frames``: how many frames are voiced in both.
    """
    reference_f0 = numpy.asarray(reference_f0, dtype=numpy.float64)
    test_f0 = numpy.asarray(test_f0, dtype=numpy.float64)
    if reference_f0.ndim != 1 or reference_f0.shape != test_f0.shape or not reference_f0.size:
        raise ValueError('F0 contours must be non-empty 1-D arrays of the same length, got '
                         'shapes %s and %s' % (reference_f0.shape, test_f0.shape))
    reference_voiced, test_voiced = reference_f0 > 0, test_f0 > 0
    both = reference_voiced & test_voiced
    result = {'f0_rmse_cents': None, 'vuv_error': float(numpy.mean(reference_voiced
                                                                   != test_voiced)),
              'f0_correlation': None, 'voiced_frames': int(both.sum())}
    if both.any():
        cents = CENTS_PER_OCTAVE * numpy.log2(test_f0[both] / reference_f0[both])
        result['f0_rmse_cents'] = float(numpy.sqrt(numpy.mean(cents * cents)))
    if both.sum() >= 2 and numpy.ptp(reference_f0[both]) > 0 and numpy.ptp(test_f0[both]) > 0:
        result['f0_correlation'] = float(numpy.corrcoef(reference_f0[both], test_f0[both])[0, 1])
    return result


# ---------------------------------------------------------------------------------------------
# Non-intrusive quality estimate: DNSMOS P.835 (optional, the `mos` extra)

DNSMOS_RATE = 16000
DNSMOS_WINDOW = 9.01  # seconds the model takes at once; windows start every second
DNSMOS_MODEL = ('speechmos', 'dnsmos_models/sig_bak_ovr.onnx')
# speechmos' mapping of the model's raw overall score to the P.835 OVRL scale (not personalised)
DNSMOS_OVERALL_POLYNOMIAL = (-0.06766283, 1.11546468, 0.04602535)
DNSMOS_INSTALL = 'pip install -e ".[mos]"'
_dnsmos_session = []


def dnsmos_unavailable():
    """None when DNSMOS can be computed here, otherwise the reason, in one line."""
    try:
        _dnsmos()
    except (ImportError, OSError) as error:
        return 'DNSMOS needs the speechmos and onnxruntime packages (%s); %s' % (
            ' '.join(str(error).split()), DNSMOS_INSTALL)
    return None


def _dnsmos():
    """The ONNX session of DNSMOS P.835 (the model file that speechmos ships), loaded once."""
    if not _dnsmos_session:
        import importlib.resources
        import onnxruntime
        package, name = DNSMOS_MODEL
        model = importlib.resources.files(package).joinpath(name)
        if not model.is_file():
            raise OSError('%s has no %s' % (package, name))
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1  # the tools' one thread per process (README)
        options.inter_op_num_threads = 1
        _dnsmos_session.append(onnxruntime.InferenceSession(
            model.read_bytes(), options, providers=['CPUExecutionProvider']))
    return _dnsmos_session[0]


def dnsmos_overall(wave, sample_rate=DNSMOS_RATE):
    """DNSMOS P.835 overall quality (OVRL, about 1..5) of a wave, as speechmos' dnsmos.run
    computes it: a wave shorter than 9.01 s is repeated until it is as long, the model scores
    each 9.01 s window starting every second, its raw overall score is mapped by speechmos'
    polynomial, and the windows' mean is returned.  Non-intrusive (no reference); trained on
    16 kHz noisy and noise-suppressed speech, so on this experiment's band-limited, partly
    synthetic speech only differences between renderings of one recording mean something."""
    session = _dnsmos()
    wave = resample(_wave(wave), sample_rate, DNSMOS_RATE).astype(numpy.float32)
    window = int(DNSMOS_WINDOW * DNSMOS_RATE)
    while len(wave) < window:
        wave = numpy.append(wave, wave)
    name = session.get_inputs()[0].name
    overall = []
    for index in range(int(numpy.floor(len(wave) / DNSMOS_RATE) - DNSMOS_WINDOW) + 1):
        # speechmos' own expressions, so the windows are exactly its
        piece = wave[int(index * DNSMOS_RATE):int((index + DNSMOS_WINDOW) * DNSMOS_RATE)]
        if len(piece) >= window:
            overall.append(session.run(None, {name: piece[None]})[0][0][2])
    return float(numpy.mean(numpy.polyval(DNSMOS_OVERALL_POLYNOMIAL, overall)))
