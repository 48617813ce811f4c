"""How much of a latent variable is used: activity, spectrum, truncation and a speaker probe.

The measurements of ``python -m common.latent analyze`` (:mod:`common.latent_analysis` runs them
on a trained model), in plain NumPy, and what the run's page and :mod:`common.compare` show of
their result (:func:`read_analysis`, :func:`summary_rows`, :func:`table_metrics`).

Why NumPy and not scikit-learn: the measures need the *whole* eigenvalue spectrum of a
covariance accumulated over a stream of frames (effective rank and participation ratio sum over
every eigenvalue; the truncation curve needs every eigenvector up to the full size).
scikit-learn's PCA wants all samples in memory, IncrementalPCA wants batches at least as large
as the number of components (4096 or 9216 frames per batch) and refits for each, and its
randomized solver gives the leading components only.  An accumulated covariance and one
``numpy.linalg.eigh`` do exactly this; the probe is a closed-form ridge classifier, a few lines.
No dependency is added (scikit-learn would be another compiled package to pin beside Chainer
7.8.1 and CuPy).

Units and frames
----------------
A latent block is (C, T, F): 4096 x 16 x 1 for bc7db4a2, 1024 x 16 x 9 for c9335bce.  A *frame*
is one time step's C x F values (4096 or 9216): the *units* of the activity measures and the
dimensions of the frame PCA.  A *block* is all C x T x F values (65,536 or 147,456).

Activity (Burda, Grosse & Salakhutdinov, Importance Weighted Autoencoders, ICLR 2016)
-----------------------------------------------------------------------------------
A unit is active when its variance over the frames of the data exceeds 0.01
(:data:`ACTIVE_VARIANCE`).  The saturated fraction is the share of all latent values with
|z| > 0.99 (:data:`SATURATION`; the latent is a tanh output).

Spectrum (:func:`spectrum_measures`)
-----------------------------------
From the eigenvalues l_1 >= l_2 >= ... of the covariance (the variances along the principal
components; the singular values of the centred data are sqrt(n l_i)):

- ``components_90``, ``components_99``: the fewest leading components holding 90 % and 99 % of
  the variance;
- ``effective_rank``: exp of the entropy of the normalised singular values p_i = s_i / sum s
  (Roy & Vetterli, The effective rank, EUSIPCO 2007): 1 for rank one, n for n equal ones;
- ``participation_ratio``: (sum l_i)^2 / sum l_i^2, likewise 1 .. n, dominated by the large ones.

:class:`FrameStatistics` accumulates the frames' sums (mean, per-unit variance, saturation) and
their covariance.  Memory stays bounded whatever the corpus's length: while the frames are
no more than the units it keeps them (at most units^2 float32 values) and decomposes their Gram
matrix (frames x frames: the same nonzero eigenvalues, exactly, at a fraction of the cost);
beyond that it adds each chunk's X^T X into a units x units float64 covariance (incremental
covariance: 134 MB for 4096 units, 680 MB for 9216) and decomposes it once
(``numpy.linalg.eigh``: 47 s for 4096 units on one core of the 2-core development machine;
the time grows as units^3).  Both are exact PCA of every frame, in float64.
Whole blocks have more values than any validation set has blocks, so their spectrum comes from
the Gram matrix of a uniform random subsample of at most :data:`MAX_BLOCKS` blocks
(:class:`Reservoir`): exact PCA of the subsample, its rank at most the blocks taken minus one.

Truncation (:class:`Truncation`)
-------------------------------
Each frame z becomes m + V_k V_k^T (z - m): its projection onto the k leading principal
components of the frame PCA (m: the frames' mean).  k = the full size keeps the latent
unchanged (no arithmetic at all), so that point is exactly the model's own output.  The data
has at most frames - 1 components when the frames are fewer than the units; a k at or above
that rank projects on all of them, which gives the frames back up to rounding.
:func:`truncation_grid` spaces k logarithmically up to the rank, then adds the full size.
:func:`smallest_k_within` reads off the smallest k of the grid within 0.1 dB MCD
(``k_within_0_1_db``) and within 1 % MSE (``k_within_1_percent_mse``) of the full latent: the
size the decoder actually needs (the bottleneck argument of AutoVC, Qian et al., ICML 2019).

Speaker probe (:func:`linear_probe`; Alain & Bengio, Understanding intermediate layers using
linear classifier probes, 2016)
----------------------------------------------------------------------------------------
Samples: each block's frames averaged over time (its real frames only).  Classifier: ridge
regression onto one-hot voices (a regularised least-squares linear classifier), features
standardised on the training folds, ridge strength the mean squared norm of the training
samples (:data:`RIDGE`), solved in its dual form (samples < features).  Cross-validation is
grouped by utterance, so no utterance has blocks on both sides, and stratified: each voice's
utterances are dealt round the folds (:func:`grouped_folds`), so every voice with at least two
utterances is in every fold's training set.  Voices with a single utterance are left out.
Reported: the accuracy over all held-out blocks, the standard deviation of the folds'
accuracies, chance (the share of the most common voice: what always guessing it scores), and
the accuracy with the voices shuffled among the utterances (the same probe on labels that carry
no information).
"""
import math
import os

import numpy

ACTIVE_VARIANCE = 0.01  # Burda et al. 2016: a unit is active when Var_x(z) > 0.01
SATURATION = 0.99  # |tanh| above this: saturated
VARIANCE_LEVELS = (0.9, 0.99)
MAX_BLOCKS = 1024  # whole blocks kept for their spectrum: 256 MB for bc7db4a2, 604 MB for c9335bce
MAX_PROBE_BLOCKS = 4096  # time-pooled blocks kept for the probe: 64 MB / 151 MB
MAX_FOLDS = 10
RIDGE = 1.0  # ridge strength, in units of the mean squared norm of the training samples
MCD_TOLERANCE_DB = 0.1
MSE_TOLERANCE = 0.01  # relative
SCREE_POINTS = 64  # points of the cumulative-variance curve kept in the JSON
MAP_POINTS = 1000  # points of the voice map kept in the JSON

FILENAME = 'latent_analysis.json'
FIGURE = 'latent_analysis.png'
MAX_ANALYSIS_BYTES = 2 ** 20


# -- spectrum --------------------------------------------------------------------------------

def spectrum_measures(eigenvalues):
    """components_90/99, effective_rank, participation_ratio of covariance eigenvalues (any
    order; negative rounding noise counts as 0)."""
    values = numpy.sort(numpy.clip(numpy.asarray(eigenvalues, dtype=numpy.float64), 0, None))[::-1]
    total = values.sum()
    if not total > 0:
        return {'components_90': 0, 'components_99': 0, 'effective_rank': 0.0,
                'participation_ratio': 0.0}
    cumulative = numpy.cumsum(values) / total
    result = {}
    for level in VARIANCE_LEVELS:
        # the fewest components reaching the level (rounding: within 1e-12 counts as reached)
        result['components_%d' % round(level * 100)] = int(
            numpy.searchsorted(cumulative, level - 1e-12) + 1)
    singular = numpy.sqrt(values)
    p = singular[singular > 0] / singular.sum()
    result['effective_rank'] = float(math.exp(-numpy.sum(p * numpy.log(p))))
    result['participation_ratio'] = float(total ** 2 / numpy.sum(values ** 2))
    return result


def scree(eigenvalues, points=SCREE_POINTS):
    """The cumulative explained-variance fraction at about ``points`` log-spaced k:
    {'k': [...], 'explained': [...]} (k = 1 .. number of eigenvalues)."""
    values = numpy.sort(numpy.clip(numpy.asarray(eigenvalues, dtype=numpy.float64), 0, None))[::-1]
    total = values.sum()
    if not len(values) or not total > 0:
        return {'k': [], 'explained': []}
    ks = numpy.unique(numpy.round(numpy.geomspace(1, len(values), points)).astype(int))
    cumulative = numpy.cumsum(values) / total
    return {'k': [int(k) for k in ks], 'explained': [round(float(cumulative[k - 1]), 6)
                                                     for k in ks]}


def _gram_eigen(data, components=True, columns=8192):
    """Eigen-decomposition of the covariance of the rows of ``data`` (n x d, n <= d) through
    their Gram matrix: (eigenvalues descending, components d x r, or None), population
    covariance (divided by n), only the r eigenvalues above rounding noise kept.  Computed in
    float64 ``columns`` columns at a time, so a float32 ``data`` is never copied whole (1024
    blocks of c9335bce, 604 MB, would need 1.2 GB more for each float64 copy)."""
    n, d = data.shape
    mean = data.mean(axis=0, dtype=numpy.float64)
    chunks = [slice(start, min(start + columns, d)) for start in range(0, d, columns)]
    gram = numpy.zeros((n, n))
    for chunk in chunks:
        centred = data[:, chunk].astype(numpy.float64) - mean[chunk]
        gram += centred @ centred.T
    values, vectors = numpy.linalg.eigh(gram)
    del gram
    order = numpy.argsort(values)[::-1]
    values, vectors = values[order], vectors[:, order]
    keep = values > max(values[0], 0) * n * numpy.finfo(numpy.float64).eps * 16
    values, vectors = values[keep], vectors[:, keep]
    if not components:
        return values / n, None
    directions = numpy.empty((d, len(values)))  # unit-norm principal directions
    for chunk in chunks:
        centred = data[:, chunk].astype(numpy.float64) - mean[chunk]
        directions[chunk] = (centred.T @ vectors) / numpy.sqrt(values)
    return values / n, directions


class FrameStatistics:
    """Frames (n, units) added in chunks: activity, saturation and the frame PCA, exact, in
    bounded memory (module docstring).  ``gram_limit``: the most frames kept for the Gram
    route (default: the units); more switch to the accumulated covariance."""

    def __init__(self, units, gram_limit=None):
        self.units = int(units)
        self.gram_limit = self.units if gram_limit is None else int(gram_limit)
        self.count = 0
        self.saturated = 0
        self.shift = None  # the first chunk's mean: sums of (z - shift) keep their precision
        self.sum = numpy.zeros(self.units)
        self.sum_squares = numpy.zeros(self.units)
        self.kept = []  # frames, while at most gram_limit
        self.covariance_sum = None  # sum of (z - shift)(z - shift)^T once beyond gram_limit

    def add(self, frames):
        frames = numpy.asarray(frames, dtype=numpy.float32).reshape(-1, self.units)
        if not len(frames):
            return
        if self.shift is None:
            self.shift = frames.mean(axis=0, dtype=numpy.float64)
        self.count += len(frames)
        self.saturated += int(numpy.count_nonzero(numpy.abs(frames) > SATURATION))
        shifted = frames.astype(numpy.float64) - self.shift
        self.sum += shifted.sum(axis=0)
        self.sum_squares += numpy.einsum('ij,ij->j', shifted, shifted)
        if self.covariance_sum is None and self.count <= self.gram_limit:
            self.kept.append(frames)
            return
        if self.covariance_sum is None:  # the frames outgrow the Gram route: switch
            self.covariance_sum = numpy.zeros((self.units, self.units), order='F')
            while self.kept:
                self._accumulate(self.kept.pop(0).astype(numpy.float64) - self.shift)
        self._accumulate(shifted)

    def _accumulate(self, shifted):
        """covariance_sum += shifted^T shifted, its lower triangle, in place (BLAS syrk: no
        units x units temporary, half the work of a product)."""
        from scipy.linalg import blas
        self.covariance_sum = blas.dsyrk(1.0, shifted, beta=1.0, c=self.covariance_sum,
                                         trans=1, lower=1, overwrite_c=1)

    @property
    def mean(self):
        return self.shift + self.sum / self.count

    @property
    def variances(self):
        """Per-unit variance over the frames (population)."""
        centre = self.sum / self.count
        return numpy.maximum(self.sum_squares / self.count - centre ** 2, 0)

    def activity(self):
        return {
            'units': self.units,
            'active_units': int(numpy.count_nonzero(self.variances > ACTIVE_VARIANCE)),
            'saturated_fraction': self.saturated / (self.count * self.units),
            'frames': self.count,
        }

    def decompose(self):
        """(eigenvalues descending, components units x r): the frame PCA."""
        if self.count < 2:
            raise ValueError('a PCA needs at least 2 frames, got %d' % self.count)
        if self.covariance_sum is None:
            return _gram_eigen(numpy.concatenate(self.kept))
        import scipy.linalg
        centre = self.sum / self.count
        covariance, self.covariance_sum = self.covariance_sum, None  # in place: no copies
        covariance /= self.count
        for start in range(0, self.units, 1024):
            rows = slice(start, start + 1024)
            covariance[rows] -= numpy.outer(centre[rows], centre)
        # LAPACK's syevr on the lower triangle, overwriting the covariance: its workspace is
        # O(units), where numpy.linalg.eigh (syevd) copies the matrix and needs 2 units^2 more
        # (9216 units: 3.4 GB at the peak instead of 1.4 GB); about as fast
        values, vectors = scipy.linalg.eigh(covariance, lower=True, overwrite_a=True,
                                            check_finite=False, driver='evr')
        del covariance
        return values[::-1], vectors[:, ::-1]


class Reservoir:
    """A uniform random sample of at most ``capacity`` items of a stream (reservoir sampling,
    Vitter's algorithm R), seeded: the same stream gives the same sample."""

    def __init__(self, capacity, seed=0):
        self.capacity = int(capacity)
        self.items = []
        self.seen = 0
        self.rng = numpy.random.default_rng(seed)

    def add(self, item):
        self.seen += 1
        if len(self.items) < self.capacity:
            self.items.append(item)
            return
        slot = int(self.rng.integers(self.seen))
        if slot < self.capacity:
            self.items[slot] = item


def block_spectrum(blocks, seen=None):
    """Spectrum measures of whole blocks (n, values) (a sample of ``seen`` blocks)."""
    data = numpy.asarray(blocks).reshape(len(blocks), -1)
    result = {'blocks': len(data), 'blocks_seen': len(data) if seen is None else int(seen),
              'values': int(data.shape[1])}
    if len(data) < 2:
        result['note'] = 'fewer than 2 whole blocks: no spectrum'
        result['scree'] = scree([])
        return result
    values, _ = _gram_eigen(data, components=False)
    result.update(spectrum_measures(values))
    result['scree'] = scree(values)
    return result


def numerical_rank(eigenvalues):
    """The eigenvalues above rounding noise (relative to the largest, as numpy.linalg's
    matrix_rank)."""
    values = numpy.asarray(eigenvalues, dtype=numpy.float64)
    if not len(values) or not values.max() > 0:
        return 0
    return int(numpy.count_nonzero(values > values.max() * len(values)
                                   * numpy.finfo(numpy.float64).eps * 16))


# -- truncation ------------------------------------------------------------------------------

def truncation_grid(units, rank, points):
    """k values: about ``points`` log-spaced from 1 to the data's rank, then the full size."""
    rank = max(1, min(int(rank), int(units)))
    if points < 2:
        return [int(units)]
    top = numpy.geomspace(1, rank, points - (1 if rank < units else 0))
    return sorted(set(int(k) for k in numpy.round(top)) | {int(units)})


class Truncation:
    """The latent (blocks, C, T, F) with each frame projected on the k leading components."""

    def __init__(self, mean, components, latent_shape):
        self.mean = numpy.asarray(mean, dtype=numpy.float64)
        self.components = numpy.asarray(components, dtype=numpy.float64)
        self.latent_shape = tuple(latent_shape)
        self.units = len(self.mean)

    def __call__(self, latents, k):
        if k >= self.units:
            return latents  # the full size: the latent itself, exactly
        k = min(k, self.components.shape[1])
        blocks = len(latents)
        channels, steps, width = self.latent_shape
        frames = latents.transpose(0, 2, 1, 3).reshape(-1, self.units).astype(numpy.float64)
        basis = self.components[:, :k]
        projected = self.mean + ((frames - self.mean) @ basis) @ basis.T
        return projected.astype(numpy.float32).reshape(blocks, steps, channels, width) \
            .transpose(0, 2, 1, 3).copy()


def smallest_k_within(curve, key, tolerance, relative=False):
    """The smallest k of the truncation curve whose ``key`` is within ``tolerance`` of the full
    latent's (the last point), absolute or relative."""
    full = curve[-1][key]
    limit = full * (1 + tolerance) if relative else full + tolerance
    return min(point['k'] for point in curve if point[key] <= limit)


# -- speaker probe ---------------------------------------------------------------------------

def grouped_folds(groups, labels, max_folds=MAX_FOLDS):
    """Fold index of each sample: whole groups (utterances) per fold, each label's groups dealt
    round the folds in turn (the next label starting where the last stopped), so a label with g
    groups is held out at most ceil(g / folds) at a time.  Folds: min(max_folds, groups)."""
    groups, labels = numpy.asarray(groups), numpy.asarray(labels)
    unique_groups = list(dict.fromkeys(groups.tolist()))
    folds = min(max_folds, len(unique_groups))
    fold_of, position = {}, 0
    for label in sorted(set(labels.tolist())):
        for group in [g for g in unique_groups if labels[groups == g][0] == label]:
            fold_of[group] = position % folds
            position += 1
    return numpy.array([fold_of[g] for g in groups.tolist()]), folds


def _ridge_predict(train, train_labels, test, classes):
    mean = train.mean(axis=0)
    scale = train.std(axis=0)
    scale[scale <= 1e-12] = 1.0
    x = (train - mean) / scale
    t = (test - mean) / scale
    targets = (train_labels[:, None] == classes[None, :]).astype(numpy.float64)
    offset = targets.mean(axis=0)
    gram = x @ x.T
    strength = RIDGE * numpy.trace(gram) / len(x)
    dual = numpy.linalg.solve(gram + strength * numpy.eye(len(x)), targets - offset)
    scores = (t @ x.T) @ dual + offset
    return classes[numpy.argmax(scores, axis=1)]


def linear_probe(features, labels, groups, max_folds=MAX_FOLDS):
    """Grouped, stratified cross-validated ridge probe: {'accuracy', 'accuracy_std',
    'chance', 'folds', 'samples'} (module docstring)."""
    features = numpy.asarray(features, dtype=numpy.float64).reshape(len(features), -1)
    labels, groups = numpy.asarray(labels), numpy.asarray(groups)
    folds, count = grouped_folds(groups, labels, max_folds)
    classes = numpy.unique(labels)
    correct, accuracies = 0, []
    for fold in range(count):
        test = folds == fold
        predicted = _ridge_predict(features[~test], labels[~test], features[test], classes)
        hits = int(numpy.count_nonzero(predicted == labels[test]))
        correct += hits
        accuracies.append(hits / int(test.sum()))
    _, counts = numpy.unique(labels, return_counts=True)
    return {'accuracy': correct / len(labels), 'accuracy_std': float(numpy.std(accuracies)),
            'chance': float(counts.max() / len(labels)), 'folds': count,
            'samples': len(labels)}


def shuffled_labels(labels, groups, seed=0):
    """The labels with the groups' labels permuted among the groups (counts per label kept)."""
    labels, groups = numpy.asarray(labels), numpy.asarray(groups)
    unique_groups = list(dict.fromkeys(groups.tolist()))
    own = [labels[groups == g][0] for g in unique_groups]
    permuted = numpy.random.default_rng(seed).permutation(len(own))
    new = {g: own[j] for g, j in zip(unique_groups, permuted)}
    return numpy.array([new[g] for g in groups.tolist()])


def speaker_probe(features, voices, utterances, seed=0):
    """The probe on time-pooled blocks: voices with a single utterance left out; skipped (a
    'note') with fewer than two voices left.  Adds the shuffled-label accuracy and a 2-D PCA
    map of the samples coloured by voice."""
    voices, utterances = numpy.asarray(voices), numpy.asarray(utterances)
    per_voice = {}
    for voice, utterance in zip(voices.tolist(), utterances.tolist()):
        per_voice.setdefault(voice, set()).add(utterance)
    kept = sorted(v for v, u in per_voice.items() if len(u) >= 2)
    result = {'voices': len(per_voice), 'voice_names': sorted(per_voice),
              'left_out': sorted(v for v in per_voice if v not in kept)}
    if len(per_voice) < 2:
        result['note'] = ('one voice (%s) among the utterances: nothing to tell apart, probe '
                          'skipped' % ', '.join(sorted(per_voice)))
        return result
    if len(kept) < 2:
        result['note'] = ('fewer than two voices with at least two utterances each: probe '
                          'skipped')
        return result
    mask = numpy.isin(voices, kept)
    features = numpy.asarray(features, dtype=numpy.float64)[mask]
    labels, groups = voices[mask], utterances[mask]
    result.update(linear_probe(features, labels, groups))
    result['voices_probed'] = len(kept)
    result['utterances'] = len(set(groups.tolist()))
    result['shuffled_accuracy'] = linear_probe(
        features, shuffled_labels(labels, groups, seed), groups)['accuracy']
    return result


def voice_map(features, voices, seed=0, points=MAP_POINTS):
    """The two leading principal components of the time-pooled blocks, for the voice map:
    {'voices': names, 'x': [...], 'y': [...], 'voice': [index...]} (at most ``points``)."""
    features = numpy.asarray(features, dtype=numpy.float64)
    voices = numpy.asarray(voices)
    names = sorted(set(voices.tolist()))
    if len(features) < 3:
        return {'voices': names, 'x': [], 'y': [], 'voice': []}
    values, components = _gram_eigen(features)
    coordinates = (features - features.mean(axis=0)) @ components[:, :2]
    if coordinates.shape[1] < 2:
        coordinates = numpy.pad(coordinates, ((0, 0), (0, 2 - coordinates.shape[1])))
    index = numpy.arange(len(features))
    if len(index) > points:
        index = numpy.sort(numpy.random.default_rng(seed).choice(index, points, replace=False))
    return {'voices': names,
            'x': [round(float(v), 4) for v in coordinates[index, 0]],
            'y': [round(float(v), 4) for v in coordinates[index, 1]],
            'voice': [names.index(v) for v in voices[index].tolist()]}


# -- what a page shows -----------------------------------------------------------------------

def read_analysis(folder):
    """The folder's latent_analysis.json as a dict, or None when there is none.  It may come
    from elsewhere: read as JSON of bounded size (common.runs.read_json: RunError when it is
    not), and everything shown of it goes through :func:`summary_rows`, which shows what is
    not a number as '-'."""
    from common import runs
    path = os.path.join(folder, FILENAME)
    if not os.path.lexists(path):
        return None
    analysis = runs.read_json(path, FILENAME, MAX_ANALYSIS_BYTES)
    if not isinstance(analysis, dict):
        raise runs.RunError('%s: %s is not a JSON object' % (path, FILENAME))
    return analysis


def _number(data, *keys):
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    if isinstance(data, bool) or not isinstance(data, (int, float)):
        return None
    return data if math.isfinite(data) else None


def _text(value, digits=4):
    if value is None:
        return '-'
    if isinstance(value, int):
        return '{:,}'.format(value)
    return '{:.{}g}'.format(value, digits)


def summary_rows(analysis):
    """What a page shows of an analysis: [(label, value, unit)], values as text ('-' where
    the analysis lacks it)."""
    a = analysis if isinstance(analysis, dict) else {}
    units = _number(a, 'units')
    saturated = _number(a, 'saturated_fraction')
    rows = [
        ('utterances analysed', _text(_number(a, 'files')),
         'of %s validation utterances' % _text(_number(a, 'validation_files'))),
        ('latent frames (time steps)', _text(_number(a, 'frames')), ''),
        ('units per frame', _text(units), ''),
        ('active units (variance > %g)' % ACTIVE_VARIANCE, _text(_number(a, 'active_units')),
         'of %s' % _text(units)),
        ('saturated values (|z| > %g)' % SATURATION,
         _text(None if saturated is None else 100 * saturated), '%'),
        ('frame PCA: components for 90 % of the variance', _text(_number(a, 'components_90')),
         ''),
        ('frame PCA: components for 99 % of the variance', _text(_number(a, 'components_99')),
         ''),
        ('frame PCA: effective rank', _text(_number(a, 'effective_rank')), ''),
        ('frame PCA: participation ratio', _text(_number(a, 'participation_ratio')), ''),
        ('block PCA: components for 99 % of the variance',
         _text(_number(a, 'blocks', 'components_99')),
         'of %s blocks sampled' % _text(_number(a, 'blocks', 'blocks'))),
        ('block PCA: effective rank', _text(_number(a, 'blocks', 'effective_rank')), ''),
    ]
    curve = a.get('truncation') if isinstance(a.get('truncation'), list) else []
    full = curve[-1] if curve and isinstance(curve[-1], dict) else {}
    rows += [
        ('MCD of the full latent (true phase)', _text(_number(full, 'mcd')), 'dB'),
        ('smallest k within %g dB MCD of the full latent' % MCD_TOLERANCE_DB,
         _text(_number(a, 'k_within_0_1_db')), 'of %s components' % _text(units)),
        ('smallest k within %g %% MSE of the full latent' % (100 * MSE_TOLERANCE),
         _text(_number(a, 'k_within_1_percent_mse')), 'of %s components' % _text(units)),
    ]
    probe = a.get('speaker_probe') if isinstance(a.get('speaker_probe'), dict) else {}
    if isinstance(probe.get('note'), str):
        rows.append(('speaker probe', probe['note'], ''))
    else:
        accuracy, spread = _number(probe, 'accuracy'), _number(probe, 'accuracy_std')
        rows += [
            ('speaker probe accuracy', _text(None if accuracy is None else 100 * accuracy, 3),
             '%% (+- %s over folds, %s voices)'
             % (_text(None if spread is None else 100 * spread, 2),
                _text(_number(probe, 'voices_probed')))),
            ('speaker probe: chance / shuffled voices',
             '%s / %s' % (_text(None if _number(probe, 'chance') is None
                                else 100 * _number(probe, 'chance'), 3),
                          _text(None if _number(probe, 'shuffled_accuracy') is None
                                else 100 * _number(probe, 'shuffled_accuracy'), 3)), '%'),
        ]
    return rows


def table_metrics(analysis):
    """A few numbers of an analysis (:func:`read_analysis`; None: none) for common.compare's
    table: {'latent: what': number}."""
    if not isinstance(analysis, dict):
        return {}
    found = {
        'latent: active units': _number(analysis, 'active_units'),
        'latent: components 99 %': _number(analysis, 'components_99'),
        'latent: effective rank': _number(analysis, 'effective_rank'),
        'latent: smallest k with MCD within 1/10 dB': _number(analysis, 'k_within_0_1_db'),
        'latent: speaker probe accuracy': _number(analysis, 'speaker_probe', 'accuracy'),
    }
    return {key: value for key, value in found.items() if value is not None}


def page_rows(analysis):
    """:func:`summary_rows` as (label, value with its unit) pairs, for a page's table."""
    return [(label, ('%s %s' % (value, unit)).strip()) for label, value, unit in
            summary_rows(analysis)]
