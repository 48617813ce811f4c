"""Chainer datasets of spectrogram excerpts from any folder of speech recordings.

:func:`load_corpus` scans a folder recursively for recordings (:data:`common.audio.EXTENSIONS`,
the rule every tool follows), decodes and resamples each once to 16 kHz mono (SPEC step 1,
:func:`common.audio.load`), caches the decoded corpus on disk as one .npz, and splits it into
training and validation files.  Files it cannot use are skipped with a one-line warning
each and a summary line.

:class:`TrainingExcerpts` draws fresh 16896-sample windows at random offsets at every access
(SPEC step 2's "arbitrary excerpt"), so each epoch sees new excerpts; :class:`ValidationExcerpts`
is a fixed, deterministic set.  Both return float32 (1, 32, 256) spectrograms (SPEC steps 2-6)
on the CPU; Chainer's converter moves batches to the GPU.
"""
import collections
import hashlib
import itertools
import os
import re

import numpy

import common
import chainer  # common/__init__.py, imported first as our package, has applied common.compat

from common import audio, files
from common import spectrogram
from common.spectrogram import EXCERPT_LENGTH, SAMPLE_RATE

CACHE_FORMAT = 2  # bump when the decoding or the cache layout changes: old caches are rebuilt
MAX_DRAWS = 1000  # random windows tried for one excerpt before giving up on the corpus
#: The built-in demo corpus (data/README.md): what training uses without --dataset.
DEMO_CORPUS = os.path.join(common.REPOSITORY, 'data', 'demo')


class CorpusError(Exception):
    """A corpus that cannot be used at all: the message is 'FOLDER: reason', on one line."""


class Corpus:
    """A decoded corpus, split by file.

    Attributes: ``root`` (the folder, as given), ``train_files`` and ``validation_files`` (paths
    under root), ``train_waves`` and ``validation_waves`` (float32 16 kHz mono arrays, in the same
    order), ``skipped`` (list of (path, reason)), ``n_files`` (usable files), ``seconds`` and
    ``hours`` (usable audio).  With a single usable file it is on both sides of the split.
    """

    def __init__(self, root, train_files, train_waves, validation_files, validation_waves,
                 skipped, seconds, cache_path):
        self.root = root
        self.train_files = train_files
        self.train_waves = train_waves
        self.validation_files = validation_files
        self.validation_waves = validation_waves
        self.skipped = skipped
        self.n_files = len(set(train_files) | set(validation_files))
        self.seconds = seconds
        self.cache_path = cache_path

    @property
    def hours(self):
        return self.seconds / 3600

    def __repr__(self):
        return ('Corpus(%r: %d files, %.2f h; %d train, %d validation, %d skipped)'
                % (self.root, self.n_files, self.hours, len(self.train_files),
                   len(self.validation_files), len(self.skipped)))


def default_cache_dir():
    """$XDG_CACHE_HOME/bc7db4a2/corpus, or ~/.cache/bc7db4a2/corpus."""
    base = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
    return os.path.join(base, 'bc7db4a2', 'corpus')


def scan(root):
    """(relative paths ('/'-separated, sorted) of the recordings under root, Counter of the
    extensions of the other files).

    Recursive; a recording is a file :func:`common.audio.is_recording` accepts (by extension,
    case-insensitive).  Hidden files and folders (name starting with '.', e.g. macOS '._*'
    resource forks, caches) are left out, and not counted.
    """
    found, others = [], collections.Counter()
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = sorted(name for name in subfolders if not name.startswith('.'))
        for name in names:
            if name.startswith('.'):
                continue
            if audio.is_recording(name):
                relative = os.path.relpath(os.path.join(folder, name), root)
                found.append(relative.replace(os.sep, '/'))
            else:
                others[audio.extension_of(name)] += 1
    return sorted(found), others


def _counts(counter):
    """'6 .mp3, 2 .flac': a Counter of extensions, largest first."""
    return ', '.join('%d %s' % (count, extension)
                     for extension, count in sorted(counter.items(), key=lambda i: (-i[1], i[0])))


def discovery(root, found, others):
    """The line that says what the scan of ``root`` found and skipped (before decoding)."""
    line = 'corpus %s: found %s' % (root, _counts(collections.Counter(
        audio.extension_of(name) for name in found)) or 'no recordings')
    if others:
        line += '; skipped %s (not recordings: those are %s)' % (_counts(others), audio.RULE)
    return line


def _fingerprint(root, relative_paths):
    """The cache key: a hash of the root and each file's (relative path, size, mtime)."""
    digest = hashlib.sha256()
    digest.update(repr((CACHE_FORMAT, SAMPLE_RATE, EXCERPT_LENGTH,
                        os.path.abspath(root))).encode('utf-8'))
    for relative in relative_paths:
        try:
            status = os.stat(os.path.join(root, relative))
            entry = (relative, status.st_size, status.st_mtime_ns)
        except OSError:  # gone or unreadable since the scan: decoding will say why
            entry = (relative, None, None)
        digest.update(repr(entry).encode('utf-8'))
    return digest.hexdigest()


def _cache_path(root, cache_dir):
    absolute = os.path.abspath(root)
    name = re.sub(r'[^A-Za-z0-9_.-]+', '_', os.path.basename(absolute.rstrip(os.sep)) or 'root')
    return os.path.join(cache_dir, '%s-%s.npz' % (name, hashlib.sha256(
        absolute.encode('utf-8')).hexdigest()[:16]))


def _read_cache(path, key, log):
    """(relative paths, waves, skipped (relative, reason)) from the cache, or None."""
    if not os.path.exists(path):
        return None
    try:
        with numpy.load(path, allow_pickle=False) as cached:
            if str(cached['key']) != key:
                log('corpus changed since it was cached: decoding it again')
                return None
            relative_paths = [str(name) for name in cached['relative_paths']]
            lengths = cached['lengths'].astype(numpy.int64)
            samples = cached['samples']
            skipped = list(zip((str(name) for name in cached['skipped_paths']),
                               (str(reason) for reason in cached['skipped_reasons'])))
    except Exception as error:  # noqa: BLE001  (any unreadable cache is just rebuilt)
        log('warning: unreadable corpus cache %s (%s): decoding again'
            % (path, ' '.join(str(error).split()) or type(error).__name__))
        return None
    if samples.dtype != numpy.float32 or int(lengths.sum()) != len(samples):
        log('warning: inconsistent corpus cache %s: decoding again' % path)
        return None
    waves = numpy.split(samples, numpy.cumsum(lengths)[:-1]) if len(lengths) else []
    return relative_paths, waves, skipped


def _write_cache(path, key, relative_paths, waves, skipped, log):
    """Write the decoded corpus atomically; failing to write only warns."""
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with files.atomic_write(path) as stream:
            numpy.savez(
                stream, key=numpy.array(key),
                relative_paths=numpy.array(relative_paths, dtype=str).reshape(-1),
                lengths=numpy.array([len(wave) for wave in waves], dtype=numpy.int64),
                samples=(numpy.concatenate(waves) if waves else numpy.zeros(0, numpy.float32)),
                skipped_paths=numpy.array([name for name, _ in skipped], dtype=str).reshape(-1),
                skipped_reasons=numpy.array([reason for _, reason in skipped],
                                            dtype=str).reshape(-1))
        return True
    except (OSError, ValueError, MemoryError) as error:
        reason = getattr(error, 'strerror', None) or ' '.join(str(error).split())
        log('warning: cannot write corpus cache %s (%s): continuing without it' % (path, reason))
        return False


def _decode(root, relative_paths, log):
    """Decode every file once: (usable relative paths, waves, skipped (relative, reason))."""
    usable, waves, skipped = [], [], []
    if len(relative_paths) > 20:
        log('decoding %d audio files under %s (once: the result is cached)'
            % (len(relative_paths), root))
    for relative in relative_paths:
        path = os.path.join(root, relative)
        try:
            wave = audio.load(path)
        except audio.AudioError as error:
            skipped.append((relative, error.reason))
            continue
        if len(wave) < EXCERPT_LENGTH:
            skipped.append((relative, 'shorter than one excerpt (%.3f s: %d samples at 16 kHz '
                                      '< %d)' % (len(wave) / SAMPLE_RATE, len(wave),
                                                 EXCERPT_LENGTH)))
            continue
        usable.append(relative)
        waves.append(wave)
    return usable, waves, skipped


def split_files(n_files, validation_fraction=0.1, seed=0):
    """Indices (train, validation) of a split by file, deterministic from seed.

    round(validation_fraction * n_files) files go to validation, at least one and at most
    n_files - 1 when n_files >= 2; a single file is on both sides.  Both lists are sorted.
    """
    if not 0 < validation_fraction < 1:
        raise ValueError('validation_fraction must be between 0 and 1, got %r'
                         % (validation_fraction,))
    if n_files < 1:
        raise ValueError('nothing to split')
    if n_files == 1:
        return [0], [0]
    n_validation = min(max(1, int(round(validation_fraction * n_files))), n_files - 1)
    order = numpy.random.default_rng(seed).permutation(n_files)
    validation = sorted(int(i) for i in order[:n_validation])
    train = sorted(int(i) for i in order[n_validation:])
    return train, validation


def load_corpus(root, validation_fraction=0.1, seed=0, cache_dir=None, log=print):
    """Decode, cache and split a folder of recordings (SPEC step 1 for every file).

    root: any folder of recordings (:func:`scan`: recursively, by the extensions of
    :data:`common.audio.EXTENSIONS`; any rate, format and channel count).  `log` first gets a
    line naming what the scan found and skipped (:func:`discovery`).  Each file is decoded and
    resampled once by :func:`common.audio.load`; the result is cached in `cache_dir` (default
    :func:`default_cache_dir`) as one .npz per root, keyed by a hash of the root and every
    file's relative path, size and mtime, and rebuilt when any of them changes.  A cache that
    cannot be written only warns.

    Files that are unreadable, truncated, empty, silent, have NaN/Inf samples, or are shorter than
    one excerpt (16896 samples at 16 kHz) are skipped: `log` gets 'skipped PATH: reason' for each
    and one summary line counting them.  The split is by file (:func:`split_files`).

    Raises CorpusError when the folder is missing, holds no recordings, or none is usable.
    """
    root = os.fspath(root)
    if not os.path.exists(root):
        raise CorpusError('%s: corpus folder does not exist' % root)
    if not os.path.isdir(root):
        raise CorpusError('%s: corpus path is not a folder' % root)
    relative_paths, others = scan(root)
    if not relative_paths:
        raise CorpusError('%s: no audio files in the corpus folder (%s); recordings are %s'
                          % (root, 'found ' + _counts(others) if others else 'found no files',
                             audio.RULE))
    log(discovery(root, relative_paths, others))

    cache_dir = default_cache_dir() if cache_dir is None else os.fspath(cache_dir)
    cache_path = _cache_path(root, cache_dir)
    key = _fingerprint(root, relative_paths)
    cached = _read_cache(cache_path, key, log)
    if cached is not None:
        usable, waves, skipped = cached
        log('corpus %s: decoded audio read from the cache %s' % (root, cache_path))
    else:
        usable, waves, skipped = _decode(root, relative_paths, log)
        if not _write_cache(cache_path, key, usable, waves, skipped, log):
            cache_path = None

    for relative, reason in skipped:
        log('skipped %s: %s' % (os.path.join(root, relative), reason))
    if skipped:
        log('skipped %d of %d audio files under %s (reasons above)'
            % (len(skipped), len(relative_paths), root))
    if not usable:
        raise CorpusError('%s: no usable audio (all %d audio files skipped)'
                          % (root, len(relative_paths)))

    train, validation = split_files(len(usable), validation_fraction, seed)
    paths = [os.path.join(root, relative) for relative in usable]
    seconds = sum(len(wave) for wave in waves) / SAMPLE_RATE
    corpus = Corpus(root, [paths[i] for i in train], [waves[i] for i in train],
                    [paths[i] for i in validation], [waves[i] for i in validation],
                    [(os.path.join(root, relative), reason) for relative, reason in skipped],
                    seconds, cache_path)
    log('corpus %s: %d usable files, %.1f min; %d for training, %d for validation (seed %d)'
        % (root, corpus.n_files, seconds / 60, len(train), len(validation), seed))
    if len(usable) == 1:
        log('only one usable file: validation excerpts come from the training file %s' % paths[0])
    return corpus


# ---------------------------------------------------------------------------------------------
# Excerpt datasets


class _Windows:
    """Uniform draws of (file, offset) over every EXCERPT_LENGTH window of a list of waves, so a
    file is chosen in proportion to its usable length (its number of window offsets)."""

    def __init__(self, waves):
        waves = list(waves)
        if not waves:
            raise ValueError('no waves to draw excerpts from')
        for index, wave in enumerate(waves):
            if numpy.ndim(wave) != 1 or len(wave) < EXCERPT_LENGTH:
                raise ValueError('wave %d must be 1-D with at least %d samples, got shape %s'
                                 % (index, EXCERPT_LENGTH, numpy.shape(wave)))
        self.waves = waves
        counts = numpy.array([len(wave) - EXCERPT_LENGTH + 1 for wave in waves], numpy.int64)
        self.ends = numpy.cumsum(counts)  # window offsets of files 0..k, summed
        self.starts = self.ends - counts
        self.total = int(self.ends[-1])

    def draw(self, rng, count):
        """(files, offsets): `count` uniform draws."""
        positions = rng.integers(0, self.total, size=count)
        files = numpy.searchsorted(self.ends, positions, side='right')
        offsets = positions - self.starts[files]
        return files, offsets

    def window(self, file_index, offset):
        return self.waves[file_index][offset:offset + EXCERPT_LENGTH]


_RESEEDS = itertools.count()  # mixed into worker seeds, so two reseeds never share a stream


class TrainingExcerpts(chainer.dataset.DatasetMixin):
    """Fresh random excerpts: each access draws a new window (SPEC step 2, "arbitrary excerpt").

    waves: float32 16 kHz waves, each at least 16896 samples (e.g. ``corpus.train_waves``).
    n_excerpts: the dataset length, i.e. excerpts per epoch.  get_example(i) ignores i and returns
    the float32 (1, 32, 256) spectrogram (SPEC steps 2-6) of a 16896-sample window at a uniform
    random offset in a file chosen in proportion to its usable length.  Windows the silence rules
    reject are redrawn, up to MAX_DRAWS times, then CorpusError.

    Randomness: in the process that created the dataset, the k-th excerpt is drawn from a
    Generator seeded with (seed, stream, k), so the excerpts are a function of ``seed``,
    ``stream`` (a data-parallel worker's rank: each worker its own stream) and ``drawn``, the
    number of excerpts drawn so far.  :meth:`serialize` saves ``drawn`` (the iterator of
    :class:`ResumableIterator` puts it into trainer snapshots), so a resumed run continues the
    stream exactly where it stopped.  In any other process, e.g. a worker of
    chainer.iterators.MultiprocessIterator, draws come from a Generator seeded from (seed,
    stream, pid, a counter), so workers never repeat each other's draws (not reproducible).
    """

    def __init__(self, waves, n_excerpts, seed=0, stream=0):
        if int(n_excerpts) < 1:
            raise ValueError('n_excerpts must be at least 1, got %r' % (n_excerpts,))
        self._windows = _Windows(waves)
        self.n_excerpts = int(n_excerpts)
        self.seed = int(seed)
        self.stream = int(stream)
        self.drawn = 0
        self._worker_rng = None
        self._worker_pid = None
        self._home_pid = os.getpid()  # the process whose draws follow (seed, stream, drawn)

    def __len__(self):
        return self.n_excerpts

    def __getstate__(self):  # a pickled copy (spawned worker) seeds its own generator
        state = self.__dict__.copy()
        state['_worker_rng'] = None
        state['_worker_pid'] = None
        return state

    def serialize(self, serializer):
        self.drawn = int(serializer('drawn', self.drawn))

    def _next_rng(self):
        """The Generator of the next excerpt in this process."""
        pid = os.getpid()
        if pid == self._home_pid:
            rng = numpy.random.default_rng([self.seed, self.stream, self.drawn])
            self.drawn += 1
            return rng
        if self._worker_rng is None or self._worker_pid != pid:
            self._worker_rng = numpy.random.default_rng(
                [self.seed, self.stream, pid, next(_RESEEDS)])
            self._worker_pid = pid
        return self._worker_rng

    def draw_excerpt(self):
        """A normalized accepted window (float32, 16896 samples) and its (file, offset)."""
        rng = self._next_rng()
        for _ in range(MAX_DRAWS):
            files, offsets = self._windows.draw(rng, 1)
            location = (int(files[0]), int(offsets[0]))
            scaled = spectrogram.normalize(self._windows.window(*location))
            if scaled is not None:
                return scaled, location
        raise CorpusError('no excerpt accepted in %d random windows: the silence rules (max == '
                          'min, or RMS > %g after scaling) reject the whole corpus'
                          % (MAX_DRAWS, spectrogram.MAX_RMS))

    def get_example(self, i):
        scaled, _ = self.draw_excerpt()
        return spectrogram.normalized_to_spectrograms(scaled)


class ResumableIterator(chainer.iterators.SerialIterator):
    """Chainer's SerialIterator, whose snapshot state also holds its dataset's (``serialize``).

    With :class:`TrainingExcerpts` that is the position in the random excerpt stream, so
    ``--resume`` draws exactly the excerpts an uninterrupted run would have drawn.  Under data
    parallelism each of ``workers`` iterates over its share of an epoch; the position is saved
    in excerpts of all workers, so a snapshot resumes with another number of workers too.
    """

    def __init__(self, dataset, batch_size, repeat=True, shuffle=None, order_sampler=None,
                 workers=1):
        super().__init__(dataset, batch_size, repeat, shuffle, order_sampler)
        self.workers = workers

    def serialize(self, serializer):
        saving = isinstance(serializer, chainer.serializer.Serializer)
        state = self._state  # Chainer's IteratorState(current_position, epoch, ...)
        if saving:
            self._state = state._replace(current_position=state.current_position * self.workers)
        super().serialize(serializer)
        if saving:
            self._state = state
        else:
            self._state = self._state._replace(
                current_position=min(self._state.current_position // self.workers,
                                     len(self.dataset) - 1))
        if hasattr(self.dataset, 'serialize'):
            self.dataset.serialize(serializer['dataset'])


class ValidationExcerpts(chainer.dataset.DatasetMixin):
    """A fixed set of accepted excerpts, the same for the same waves and seed.

    Windows are drawn like :class:`TrainingExcerpts` draws them (uniform over all window
    offsets) from a Generator seeded with `seed`, rejected ones skipped, and the (1, 32, 256)
    spectrograms of the n_excerpts accepted windows are computed once, in batches, in __init__.
    ``locations[i]`` is (file index, offset) of example i; ``excerpt(i)`` its normalized wave.
    """

    BATCH = 256  # windows normalized and transformed per vectorised call

    def __init__(self, waves, n_excerpts, seed=0):
        n_excerpts = int(n_excerpts)
        if n_excerpts < 1:
            raise ValueError('n_excerpts must be at least 1, got %r' % (n_excerpts,))
        self._windows = _Windows(waves)
        rng = numpy.random.default_rng(seed)
        locations, spectrograms = [], []
        drawn = 0
        while len(locations) < n_excerpts:
            if drawn >= MAX_DRAWS * n_excerpts:
                raise CorpusError('only %d of %d validation excerpts accepted in %d random '
                                  'windows: the silence rules reject nearly all of the corpus'
                                  % (len(locations), n_excerpts, drawn))
            count = min(self.BATCH, 2 * (n_excerpts - len(locations)))
            files, offsets = self._windows.draw(rng, count)
            drawn += count
            windows = numpy.stack([self._windows.window(f, o) for f, o in zip(files, offsets)])
            scaled, accepted = spectrogram.normalize_batch(windows)
            keep = numpy.flatnonzero(accepted)[:n_excerpts - len(locations)]
            if len(keep):
                locations.extend(zip(files[keep].tolist(), offsets[keep].tolist()))
                spectrograms.append(spectrogram.normalized_to_spectrograms(scaled[keep]))
        self.locations = numpy.array(locations, dtype=numpy.int64)
        self.spectrograms = numpy.concatenate(spectrograms)

    def __len__(self):
        return len(self.spectrograms)

    def get_example(self, i):
        return self.spectrograms[i]

    def excerpt(self, i):
        """The normalized wave (float32, 16896 samples, in [-1, 1]) of example i."""
        file_index, offset = self.locations[i]
        return spectrogram.normalize(self._windows.window(int(file_index), int(offset)))
