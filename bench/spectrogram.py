"""Speed of the input pipeline on one core: decoding, spectrograms, Griffin-Lim.

    python bench/spectrogram.py [--seconds 60] [--repeats 5] [--all-cores]

Reports, as multiples of real time (seconds of audio handled per second of one core):
  * decoding + resampling to 16 kHz mono (common.audio.load) of WAV/FLAC/OGG files at
    16/22.05/44.1/48 kHz, written into a temporary folder from pysptk's real utterance;
  * spectrogram extraction (SPEC steps 2-6): batches of excerpts (common.spectrogram.
    to_spectrograms, the validation path), single excerpts (to_spectrogram, the training path),
    and a whole utterance (utterance_to_spectrogram);
  * librosa.stft computing the same frames (Hamming numpy.hamming(1024), hop 512, no centering)
    side by side, when librosa is importable (a bench-only package, never a dependency);
and Griffin-Lim (common.spectrogram.to_wave, 100 iterations) as seconds per second of audio.

BLAS/FFT thread pools are limited to one thread (environment variables set before NumPy is
imported, and threadpoolctl when installed), and the process is pinned to one CPU unless
--all-cores is given.  Timings are the best of --repeats runs.
"""
import argparse
import os
import sys

for _variable in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS',
                  'NUMEXPR_NUM_THREADS', 'VECLIB_MAXIMUM_THREADS', 'NUMBA_NUM_THREADS'):
    os.environ[_variable] = '1'

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import platform  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy  # noqa: E402
import pysptk  # noqa: E402
import scipy  # noqa: E402
import scipy.signal  # noqa: E402
import soundfile  # noqa: E402

from common import audio  # noqa: E402
from common import spectrogram as S  # noqa: E402

try:
    import threadpoolctl
except ImportError:
    threadpoolctl = None
try:
    import librosa
except ImportError:
    librosa = None


def best_time(function, repeats):
    """The shortest wall time of `repeats` calls (after one warm-up call), and the last result."""
    result = function()
    best = float('inf')
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
    return best, result


def long_speech(seconds):
    """`seconds` of speech at 16 kHz: pysptk's utterance, repeated at slightly varied speeds."""
    utterance, rate = soundfile.read(pysptk.util.example_audio_file(), dtype='float64')
    assert rate == S.SAMPLE_RATE
    pieces, total, index = [], 0, 0
    while total < seconds * S.SAMPLE_RATE:
        piece = scipy.signal.resample_poly(utterance, 20, 20 + index % 5)
        pieces.append(piece)
        total += len(piece)
        index += 1
    return numpy.concatenate(pieces)[:int(seconds * S.SAMPLE_RATE)]


def report(name, audio_seconds, seconds):
    print('  %-58s %9.0fx real time  (%.4f s for %.1f s of audio)'
          % (name, audio_seconds / seconds, seconds, audio_seconds))


def bench_decoding(speech, repeats):
    print('decoding + resampling to 16 kHz mono (common.audio.load):')
    cases = [('WAV 16 kHz mono PCM_16', 'wav', 16000, 1, 'PCM_16'),
             ('FLAC 16 kHz mono PCM_16', 'flac', 16000, 1, 'PCM_16'),
             ('FLAC 44.1 kHz stereo PCM_16', 'flac', 44100, 2, 'PCM_16'),
             ('WAV 48 kHz stereo PCM_24', 'wav', 48000, 2, 'PCM_24'),
             ('OGG Vorbis 22.05 kHz mono', 'ogg', 22050, 1, 'VORBIS')]
    seconds = len(speech) / S.SAMPLE_RATE
    with tempfile.TemporaryDirectory() as folder:
        for name, extension, rate, channels, subtype in cases:
            wave = speech if rate == S.SAMPLE_RATE else scipy.signal.resample_poly(
                speech, rate // 50, S.SAMPLE_RATE // 50)
            path = os.path.join(folder, 'speech.%s' % extension)
            soundfile.write(path, 0.9 * wave[:, None] * numpy.ones(channels), rate,
                            subtype=subtype)
            elapsed, _ = best_time(lambda: audio.load(path), repeats)
            report(name, seconds, elapsed)


def excerpt_batch(speech, count, seed=0):
    """`count` accepted raw windows of 16896 samples at random offsets (float32)."""
    rng = numpy.random.default_rng(seed)
    windows = []
    while len(windows) < count:
        offset = rng.integers(0, len(speech) - S.EXCERPT_LENGTH)
        window = speech[offset:offset + S.EXCERPT_LENGTH]
        if S.normalize(window) is not None:
            windows.append(window)
    return numpy.stack(windows).astype(numpy.float32)


def bench_extraction(speech, repeats):
    print('spectrogram extraction (SPEC steps 2-6, float32 (1, 32, 256) per excerpt):')
    batch = excerpt_batch(speech, 512)
    excerpt_seconds = S.EXCERPT_LENGTH / S.SAMPLE_RATE
    elapsed, ours = best_time(lambda: S.to_spectrograms(batch), repeats)
    report('to_spectrograms, batch of %d excerpts' % len(batch), len(batch) * excerpt_seconds,
           elapsed)
    singles = batch[:64]
    elapsed, _ = best_time(lambda: [S.to_spectrogram(x) for x in singles], repeats)
    report('to_spectrogram, one excerpt per call (%d calls)' % len(singles),
           len(singles) * excerpt_seconds, elapsed)
    speech32 = speech.astype(numpy.float32)
    elapsed, whole = best_time(lambda: S.utterance_to_spectrogram(speech32), repeats)
    report('utterance_to_spectrogram, one %.0f s utterance (%d frames)'
           % (len(speech) / S.SAMPLE_RATE, whole.shape[1]), len(speech) / S.SAMPLE_RATE, elapsed)

    if librosa is None:
        print('  librosa is not importable: no side-by-side comparison '
              '(pip install librosa in a separate environment to get one)')
        return
    print('  librosa %s, the same frames (numpy.hamming window, hop 512, center=False):'
          % librosa.__version__)
    scaled, _ = S.normalize_batch(batch)
    window = numpy.hamming(S.FRAME_LENGTH)

    def librosa_frames(waves):
        return librosa.stft(waves, n_fft=S.FRAME_LENGTH, hop_length=S.HOP_LENGTH,
                            window=window, center=False)

    elapsed, spectrum = best_time(lambda: librosa_frames(scaled), repeats)
    report('librosa.stft alone (complex frames), same batch', len(batch) * excerpt_seconds,
           elapsed)

    def librosa_spectrograms():
        magnitude = numpy.abs(librosa_frames(scaled))  # (N, 513, 32)
        return S.magnitude_to_spectrogram(numpy.swapaxes(magnitude, -1, -2))[:, None]

    elapsed, theirs = best_time(librosa_spectrograms, repeats)
    report('librosa.stft + steps 4-6, same batch', len(batch) * excerpt_seconds, elapsed)
    print('  max |ours - librosa-based| over the batch: %.2e' % numpy.abs(ours - theirs).max())
    elapsed, _ = best_time(lambda: librosa_frames(speech32), repeats)
    report('librosa.stft alone, the same utterance', len(speech) / S.SAMPLE_RATE, elapsed)


def bench_griffin_lim(speech, repeats):
    print('Griffin-Lim (fast, momentum 0.99), 100 iterations, seconds per second of audio:')
    batch = excerpt_batch(speech, 1)
    excerpt = S.to_spectrogram(batch[0])
    utterance = S.utterance_to_spectrogram(speech[:10 * S.SAMPLE_RATE].astype(numpy.float32))
    for name, spectrogram in (('one excerpt (32 frames, 1.056 s)', excerpt),
                              ('a 10 s utterance (%d frames)' % utterance.shape[1], utterance)):
        elapsed, wave = best_time(lambda: S.to_wave(spectrogram, n_iter=100), max(1, repeats // 2))
        seconds = len(wave) / S.SAMPLE_RATE
        convergence = S.spectral_convergence(S.spectrogram_to_magnitude(spectrogram[0]), wave)
        print('  %-58s %9.4f s/s  (%.3f s for %.2f s; spectral convergence %.3f)'
              % ('to_wave, ' + name, elapsed / seconds, elapsed, seconds, convergence))
    if librosa is not None:
        magnitude = S.spectrogram_to_magnitude(excerpt[0]).T
        window = numpy.hamming(S.FRAME_LENGTH)

        def librosa_griffin_lim():
            return librosa.griffinlim(magnitude, n_iter=100, hop_length=S.HOP_LENGTH,
                                      n_fft=S.FRAME_LENGTH, window=window, center=False,
                                      momentum=0.99, init=None)
        elapsed, wave = best_time(librosa_griffin_lim, max(1, repeats // 2))
        seconds = len(wave) / S.SAMPLE_RATE
        print('  %-58s %9.4f s/s  (%.3f s for %.2f s)'
              % ('librosa.griffinlim, the same excerpt', elapsed / seconds, elapsed, seconds))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--seconds', type=float, default=60,
                        help='length of the speech used for decoding and utterances (60)')
    parser.add_argument('--repeats', type=int, default=5, help='timed runs, best kept (5)')
    parser.add_argument('--all-cores', action='store_true',
                        help='do not pin the process to one CPU')
    arguments = parser.parse_args()

    pinned = 'not pinned'
    if not arguments.all_cores and hasattr(os, 'sched_setaffinity'):
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        pinned = 'pinned to CPU %d' % cpu
    if threadpoolctl is not None:
        threadpoolctl.threadpool_limits(1)
    print('Python %s, NumPy %s, SciPy %s, soundfile %s (libsndfile %s); %s; %s'
          % (platform.python_version(), numpy.__version__, scipy.__version__,
             soundfile.__version__, soundfile.__libsndfile_version__, platform.processor()
             or platform.machine(), pinned))

    speech = long_speech(arguments.seconds)
    bench_decoding(speech, arguments.repeats)
    bench_extraction(speech, arguments.repeats)
    bench_griffin_lim(speech, arguments.repeats)


if __name__ == '__main__':
    main()
