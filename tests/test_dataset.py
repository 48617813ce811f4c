"""common.dataset: corpus scanning, decoding, caching and splitting; excerpt datasets.

Every corpus is written here into tmp_path, from the real utterance pysptk ships, at several
rates, formats and channel counts, mixed with unusable files."""
import io
import os
import time

from common import compat

compat.apply()  # again here: pytest restores the warning filters that conftest's import set

import numpy
import pysptk
import pytest
import scipy.signal
import soundfile

import chainer
from common import audio
from common import dataset
from common import spectrogram as S


@pytest.fixture(scope='module')
def speech():
    wave, rate = soundfile.read(pysptk.util.example_audio_file())
    assert rate == 16000
    return wave


GOOD = {  # relative path: (rate, channels, subtype) of the usable files
    'a/speaker1.wav': (16000, 1, 'PCM_16'),
    'a/deeper/speaker2.FLAC': (44100, 2, 'PCM_24'),
    'b/speaker3.ogg': (22050, 1, 'VORBIS'),
    'b/speaker4.wav': (8000, 1, 'PCM_U8'),
    'c/speaker5.Wav': (48000, 4, 'FLOAT'),
}


def write(path, wave, rate, subtype=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, wave, rate, subtype=subtype)


def make_corpus(folder, speech, with_bad=True):
    """Five usable files (different rates, formats, channels, pitch) and six unusable ones."""
    for index, (relative, (rate, channels, subtype)) in enumerate(sorted(GOOD.items())):
        voice = scipy.signal.resample_poly(speech, 10, 10 + index)  # a different "voice" each
        voice = scipy.signal.resample_poly(voice, rate // 50, 16000 // 50)  # to the file's rate
        gains = numpy.linspace(1.0, 0.5, channels)
        write(folder / relative, 0.9 * voice[:, None] * gains, rate, subtype)
    (folder / 'notes.txt').write_text('not audio, not an audio extension: ignored\n')
    (folder / '.hidden').mkdir()
    write(folder / '.hidden' / 'ignored.wav', speech, 16000)
    (folder / 'a' / '._speaker1.wav').write_bytes(b'\0\5\26\7 macOS resource fork')
    if not with_bad:
        return
    bad = folder / 'bad'
    bad.mkdir()
    (bad / 'not_audio.wav').write_bytes(b'plain text pretending to be a wav file\n' * 30)
    (bad / 'zero_length.flac').write_bytes(b'')
    stream = io.BytesIO()
    soundfile.write(stream, speech, 16000, format='FLAC')
    (bad / 'truncated.flac').write_bytes(stream.getvalue()[:len(stream.getvalue()) // 2])
    write(bad / 'silent.wav', numpy.zeros(40000), 16000)
    with_nan = speech.copy()
    with_nan[100] = numpy.nan
    write(bad / 'nan.wav', with_nan, 16000, 'FLOAT')
    write(bad / 'short.ogg', speech[:16000], 16000)  # 1 s < one excerpt (1.056 s)


BAD_REASONS = {
    'bad/not_audio.wav': 'not readable',
    'bad/zero_length.flac': 'empty',
    'bad/truncated.flac': 'truncated',
    'bad/silent.wav': 'silent',
    'bad/nan.wav': 'NaN',
    'bad/short.ogg': 'shorter than one excerpt',
}


def load(root, cache, **keywords):
    lines = []
    corpus = dataset.load_corpus(root, cache_dir=cache, log=lines.append, **keywords)
    return corpus, lines


def test_mixed_folder_loads_and_bad_files_are_skipped_with_one_line_each(tmp_path, speech):
    root = tmp_path / 'corpus'
    make_corpus(root, speech)
    corpus, lines = load(root, tmp_path / 'cache')
    assert corpus.n_files == 5
    assert len(corpus.train_files) == 4 and len(corpus.validation_files) == 1
    files = corpus.train_files + corpus.validation_files
    assert sorted(os.path.relpath(path, root) for path in files) == sorted(GOOD)
    for wave in corpus.train_waves + corpus.validation_waves:
        assert wave.dtype == numpy.float32 and wave.ndim == 1 and len(wave) >= S.EXCERPT_LENGTH
    expected_seconds = sum(len(wave) for wave in corpus.train_waves + corpus.validation_waves)
    assert corpus.seconds == pytest.approx(expected_seconds / 16000)
    assert corpus.hours == pytest.approx(corpus.seconds / 3600)
    # The stereo 44.1 kHz file came back at 16 kHz with its duration.
    stereo = files.index(os.path.join(root, 'a/deeper/speaker2.FLAC'))
    stereo_wave = (corpus.train_waves + corpus.validation_waves)[stereo]
    pitch_index = sorted(GOOD).index('a/deeper/speaker2.FLAC')  # make_corpus's voice number
    assert abs(len(stereo_wave) - len(speech) * 10 / (10 + pitch_index)) < 3

    skipped = {os.path.relpath(path, root): reason for path, reason in corpus.skipped}
    assert set(skipped) == set(BAD_REASONS)
    for relative, words in BAD_REASONS.items():
        assert words in skipped[relative]
        path = os.path.join(root, relative)
        assert sum(line.startswith('skipped %s: ' % path) for line in lines) == 1, lines
    assert all('\n' not in line for line in lines)
    summary = [line for line in lines if line.startswith('skipped 6 of 11 audio files')]
    assert len(summary) == 1


def test_corpus_errors_name_the_folder(tmp_path, speech):
    missing = tmp_path / 'missing'
    with pytest.raises(dataset.CorpusError, match='does not exist') as caught:
        load(missing, tmp_path / 'cache')
    assert str(caught.value).startswith(str(missing))
    empty = tmp_path / 'empty'
    empty.mkdir()
    (empty / 'readme.txt').write_text('no recordings here')
    with pytest.raises(dataset.CorpusError, match='no audio files'):
        load(empty, tmp_path / 'cache')
    unusable = tmp_path / 'unusable'
    unusable.mkdir()
    (unusable / 'a.wav').write_bytes(b'text')
    write(unusable / 'b.flac', numpy.zeros(20000), 16000)
    with pytest.raises(dataset.CorpusError, match='no usable audio') as caught:
        load(unusable, tmp_path / 'cache')
    assert str(caught.value).startswith(str(unusable)) and '\n' not in str(caught.value)
    a_file = tmp_path / 'file.wav'
    write(a_file, speech, 16000)
    with pytest.raises(dataset.CorpusError, match='not a folder'):
        load(a_file, tmp_path / 'cache')


def test_cache_is_used_and_rebuilt_when_a_file_changes(tmp_path, speech, monkeypatch):
    root = tmp_path / 'corpus'
    make_corpus(root, speech)
    cache = tmp_path / 'cache'
    first, _ = load(root, cache)
    assert first.cache_path and os.path.exists(first.cache_path)
    assert os.listdir(cache) == [os.path.basename(first.cache_path)]  # one .npz, no temp files

    decoded = []
    real_load = audio.load
    monkeypatch.setattr(audio, 'load', lambda path: decoded.append(path) or real_load(path))
    second, lines = load(root, cache)
    assert decoded == []  # everything came from the cache
    assert any('cache' in line for line in lines)
    assert len(second.skipped) == 6 and sum(line.startswith('skipped ') for line in lines) == 7
    assert second.train_files == first.train_files
    for a, b in zip(second.train_waves, first.train_waves):
        numpy.testing.assert_array_equal(a, b)

    changed = root / 'a' / 'speaker1.wav'
    write(changed, 0.5 * speech[::-1], 16000, 'PCM_16')
    status = os.stat(changed)
    os.utime(changed, ns=(status.st_atime_ns, status.st_mtime_ns + 10 ** 9))
    third, lines = load(root, cache)
    assert len(decoded) == 11  # rebuilt: every audio file decoded again
    assert any('changed' in line for line in lines)
    waves = dict(zip(third.train_files + third.validation_files,
                     third.train_waves + third.validation_waves))
    numpy.testing.assert_allclose(waves[str(changed)], 0.5 * speech[::-1], atol=1e-4)
    assert os.listdir(cache) == [os.path.basename(first.cache_path)]  # replaced, not added

    (root / 'a' / 'speaker1.wav').unlink()  # a removed file also rebuilds
    fourth, _ = load(root, cache)
    assert fourth.n_files == 4 and len(decoded) == 21


def test_unwritable_or_broken_cache_only_warns(tmp_path, speech):
    root = tmp_path / 'corpus'
    make_corpus(root, speech, with_bad=False)
    blocker = tmp_path / 'a_file'
    blocker.write_text('a file where the cache folder should be')
    corpus, lines = load(root, blocker / 'cache')
    assert corpus.n_files == 5 and corpus.cache_path is None
    warnings = [line for line in lines if line.startswith('warning: cannot write corpus cache')]
    assert len(warnings) == 1

    cache = tmp_path / 'cache'
    corpus, _ = load(root, cache)
    with open(corpus.cache_path, 'r+b') as stream:  # corrupt it
        stream.seek(100)
        stream.write(b'\0' * 4000)
    again, lines = load(root, cache)
    assert again.n_files == 5
    assert any(line.startswith('warning:') and 'cache' in line for line in lines)
    third, lines = load(root, cache)  # rewritten by the previous call
    assert not any(line.startswith('warning:') for line in lines)


def test_default_cache_folder(monkeypatch, tmp_path):
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'xdg'))
    assert dataset.default_cache_dir() == str(tmp_path / 'xdg' / 'bc7db4a2' / 'corpus')
    monkeypatch.delenv('XDG_CACHE_HOME')
    monkeypatch.setenv('HOME', str(tmp_path / 'home'))
    assert dataset.default_cache_dir() == str(tmp_path / 'home' / '.cache' / 'bc7db4a2' / 'corpus')


def test_split_is_by_file_deterministic_and_never_empty(tmp_path, speech):
    for n in range(2, 30):
        for seed in range(3):
            train, validation = dataset.split_files(n, 0.1, seed)
            assert train and validation and not set(train) & set(validation)
            assert sorted(train + validation) == list(range(n))
            assert (train, validation) == dataset.split_files(n, 0.1, seed)
    assert len(dataset.split_files(20, 0.25, 0)[1]) == 5
    assert len({tuple(dataset.split_files(20, 0.1, seed)[1]) for seed in range(10)}) > 1
    with pytest.raises(ValueError):
        dataset.split_files(5, 0.0)

    root = tmp_path / 'corpus'
    make_corpus(root, speech, with_bad=False)
    a, _ = load(root, tmp_path / 'cache', seed=3, validation_fraction=0.4)
    b, _ = load(root, tmp_path / 'cache', seed=3, validation_fraction=0.4)
    assert (a.train_files, a.validation_files) == (b.train_files, b.validation_files)
    assert len(a.validation_files) == 2


def test_a_single_file_is_on_both_sides(tmp_path, speech):
    root = tmp_path / 'one'
    write(root / 'only.flac', speech, 16000)
    corpus, lines = load(root, tmp_path / 'cache')
    assert corpus.train_files == corpus.validation_files == [str(root / 'only.flac')]
    assert corpus.n_files == 1
    assert any('only one usable file' in line for line in lines)


def test_training_excerpts_are_fresh_accepted_windows(speech):
    # 40000 silent samples then speech: windows entirely in the silence are rejected.
    waves = [numpy.concatenate([numpy.zeros(40000), speech]).astype(numpy.float32),
             speech[:20000].astype(numpy.float32)]
    excerpts = dataset.TrainingExcerpts(waves, n_excerpts=7, seed=1)
    assert len(excerpts) == 7
    example = excerpts[0]
    assert example.shape == (1, 32, 256) and example.dtype == numpy.float32
    assert not numpy.array_equal(excerpts[0], excerpts[0])  # a new draw at each access
    batch = excerpts[0:7]
    assert len(batch) == 7

    files = []
    for _ in range(300):
        scaled, (file_index, offset) = excerpts.draw_excerpt()
        window = waves[file_index][offset:offset + S.EXCERPT_LENGTH]
        assert len(window) == S.EXCERPT_LENGTH
        assert S.normalize(window) is not None
        numpy.testing.assert_array_equal(scaled, S.normalize(window))
        if file_index == 0:
            assert offset + S.EXCERPT_LENGTH > 40000  # never a silent window
        files.append(file_index)
    # Files are chosen in proportion to their number of window offsets (87105 vs 3105), the
    # silent ones redrawn, so file 1 gets about 3105 / (87105 - 23105 + 3105) = 4.6 %.
    assert 0 < files.count(1) < 40

    same_seed = dataset.TrainingExcerpts(waves, 7, seed=1)
    other = dataset.TrainingExcerpts(waves, 7, seed=1)
    numpy.testing.assert_array_equal(same_seed[3], other[3])


def test_training_excerpts_give_up_on_a_corpus_the_rules_reject():
    t = numpy.arange(40000) / 16000
    tones = [numpy.sin(2 * numpy.pi * 300 * t).astype(numpy.float32)]  # RMS 0.707 after scaling
    with pytest.raises(dataset.CorpusError, match='reject'):
        dataset.TrainingExcerpts(tones, 10)[0]
    with pytest.raises(dataset.CorpusError, match='reject'):
        dataset.ValidationExcerpts(tones, 3)
    with pytest.raises(ValueError):
        dataset.TrainingExcerpts([numpy.zeros(100, numpy.float32)], 10)
    with pytest.raises(ValueError):
        dataset.TrainingExcerpts([], 10)


class SlowTaggedExcerpts(chainer.dataset.DatasetMixin):
    """Each example of the wrapped dataset with the pid that drew it, slowly enough that every
    worker of the pool gets some of the work."""

    def __init__(self, excerpts):
        self.excerpts = excerpts

    def __len__(self):
        return len(self.excerpts)

    def get_example(self, i):
        time.sleep(0.02)
        return os.getpid(), self.excerpts[i]


@pytest.mark.filterwarnings('ignore::DeprecationWarning')  # Chainer's setDaemon, fork in threads
def test_multiprocess_workers_draw_different_excerpts(speech):
    waves = [speech.astype(numpy.float32)]
    excerpts = SlowTaggedExcerpts(dataset.TrainingExcerpts(waves, n_excerpts=36, seed=0))
    iterator = chainer.iterators.MultiprocessIterator(
        excerpts, batch_size=12, repeat=False, shuffle=False, n_processes=2, n_prefetch=1)
    try:
        # Chainer draws the first batch in this process (to measure its size), then forks.
        batches = [iterator.next() for _ in range(3)]
    finally:
        iterator.finalize()
    assert {pid for pid, _ in batches[0]} == {os.getpid()}
    from_workers = batches[1] + batches[2]
    # Which worker draws which batch is up to the scheduler (one may take all on a busy
    # machine); what matters is that worker draws differ from the parent's and each other's.
    assert {pid for pid, _ in from_workers} - {os.getpid()}
    # A process that repeated another's stream would repeat a whole batch; independent draws
    # share a window only by chance (36 offsets among 47104 in this wave: about 1 run in 75
    # has a pair), so batches may share an excerpt or two but never most of a batch.
    contents = [{example.tobytes() for _, example in batch} for batch in batches]
    for first in range(3):
        for second in range(first + 1, 3):
            shared = len(contents[first] & contents[second])
            assert shared <= 2, 'batches %d and %d share %d of 12 excerpts' % (first, second, shared)
    assert sum(map(len, contents)) >= 34


def test_validation_excerpts_are_fixed(speech):
    waves = [numpy.concatenate([numpy.zeros(30000), speech]).astype(numpy.float32),
             speech[::-1].astype(numpy.float32)]
    first = dataset.ValidationExcerpts(waves, n_excerpts=40, seed=5)
    second = dataset.ValidationExcerpts(waves, n_excerpts=40, seed=5)
    assert len(first) == 40
    numpy.testing.assert_array_equal(first.locations, second.locations)
    numpy.testing.assert_array_equal(first.spectrograms, second.spectrograms)
    assert first.spectrograms.shape == (40, 1, 32, 256)
    assert first.spectrograms.dtype == numpy.float32
    for i in (0, 17, 39):
        example = first.get_example(i)
        assert example.shape == (1, 32, 256) and example.dtype == numpy.float32
        wave = first.excerpt(i)
        assert wave.dtype == numpy.float32 and wave.shape == (S.EXCERPT_LENGTH,)
        assert wave.min() == -1 and wave.max() == 1
        numpy.testing.assert_allclose(S.to_spectrogram(wave), example, atol=1e-5)
    file_index, offset = first.locations.T
    assert not numpy.any((file_index == 0) & (offset + S.EXCERPT_LENGTH <= 30000))
    assert set(file_index.tolist()) == {0, 1}
    other_seed = dataset.ValidationExcerpts(waves, n_excerpts=40, seed=6)
    assert not numpy.array_equal(other_seed.locations, first.locations)
