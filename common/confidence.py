"""Means with confidence intervals over utterances, and paired comparisons of two runs.

Every number of :mod:`common.evaluate` is measured per validation utterance, and each utterance
counts once.  How far a mean over a few dozen utterances can be trusted, and whether two runs
really differ, are questions about the spread over utterances:

- :func:`mean_interval`: the mean and its 95 % confidence interval by Student's t over the
  utterances, mean +- t(0.975, n - 1) * s / sqrt(n), s the sample standard deviation.  A t
  interval rather than a bootstrap: it is deterministic, and with the few utterances of a
  validation split (14 in the demo corpus) percentile bootstraps are too narrow.  Undefined
  values (None, e.g. an F0 error of an utterance without voiced frames) are left out; an
  interval needs two values.
- :func:`paired_difference`: two runs evaluated on the same utterances (same corpus and seed,
  so the same validation split) are compared utterance by utterance: the differences
  d_i = b_i - a_i, their mean, its 95 % t interval and the two-sided p-value of the paired
  t-test (scipy.stats.ttest_rel's).  The difference is *supported* when the interval excludes 0
  (p < 0.05); otherwise the data do not show that the runs differ in that number.  Pairing
  removes the spread between utterances (a hard utterance is hard for both runs), so it
  detects much smaller differences than comparing the two runs' intervals would.  Identical
  values give the difference 0, "no difference".
- Each metric is tested on its own: among 20 numbers with no real difference, about one is
  flagged by chance.
"""
import math
import os

import numpy
import scipy.stats

LEVEL = 0.95
METHOD = 'Student t over utterances, 95 %'
PAIRED_METHOD = 'paired t-test over the utterances both runs measured, 95 %'


def _defined(values):
    return numpy.array([float(value) for value in values if value is not None],
                       dtype=numpy.float64)


def mean_interval(values, level=LEVEL):
    """(mean, [low, high]) of the values that are not None: the t interval of the mean.

    The mean is None without values, the interval None with fewer than two; a constant list
    has the interval [mean, mean]."""
    values = _defined(values)
    if not values.size:
        return None, None
    mean = float(numpy.mean(values))
    if values.size < 2:
        return mean, None
    half = (scipy.stats.t.ppf(0.5 + level / 2, values.size - 1)
            * numpy.std(values, ddof=1) / math.sqrt(values.size))
    return mean, [mean - float(half), mean + float(half)]


class PairedDifference:
    """The paired comparison of one number over the utterances two runs share.

    Attributes: ``n`` (utterances with a value in both), ``mean`` (mean of b - a), ``interval``
    ([low, high], its t interval; None with n < 2), ``p_value`` (two-sided, paired t-test),
    ``supported`` (True: the interval excludes 0; False: it does not, or the differences are
    all 0; None: fewer than 2 pairs, no test)."""

    def __init__(self, a, b, level=LEVEL):
        pairs = [(float(x), float(y)) for x, y in zip(a, b) if x is not None and y is not None]
        self.n = len(pairs)
        differences = numpy.array([y - x for x, y in pairs], dtype=numpy.float64)
        self.mean, self.interval = mean_interval(differences, level)
        self.p_value = None
        self.supported = None
        if self.n < 2:
            return
        if not differences.any():  # identical: no difference, whatever the spread
            self.p_value, self.supported = 1.0, False
            return
        spread = numpy.std(differences, ddof=1)
        if spread == 0:  # the same nonzero shift on every utterance
            self.p_value = 0.0
        else:
            t = self.mean / (spread / math.sqrt(self.n))
            self.p_value = float(2 * scipy.stats.t.sf(abs(t), self.n - 1))
        self.supported = not self.interval[0] <= 0 <= self.interval[1]

    def verdict(self):
        """'b > a', 'b < a', 'no difference shown' or 'too few utterances'."""
        if self.supported is None:
            return 'too few utterances'
        if not self.supported:
            return 'no difference shown'
        return 'b > a' if self.mean > 0 else 'b < a'

    def as_dict(self):
        return {'n': self.n, 'mean_difference': self.mean, 'interval': self.interval,
                'p_value': self.p_value, 'supported': self.supported}


def paired_difference(a, b, level=LEVEL):
    """:class:`PairedDifference` of b - a, two lists of per-utterance values in the same
    order (None where a value is undefined: that pair is left out)."""
    if len(a) != len(b):
        raise ValueError('paired values differ in count: %d and %d' % (len(a), len(b)))
    return PairedDifference(a, b, level)


def _leaves(tree, prefix=''):
    """(dotted name, list) of each list of numbers in a nested dict of per-utterance values."""
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from _leaves(value, prefix + key + '.')
        elif isinstance(value, list) and all(
                item is None or (isinstance(item, (int, float)) and not isinstance(item, bool))
                for item in value):
            yield prefix + key, value


def per_utterance_values(evaluation):
    """{file: {dotted metric name: value}} from an evaluation.json's ``per_utterance``, or {}
    when it has none or it is malformed (an older evaluation.json: means only)."""
    table = evaluation.get('per_utterance') if isinstance(evaluation, dict) else None
    if not isinstance(table, dict) or not isinstance(table.get('file'), list):
        return {}
    names = table['file']
    if not all(isinstance(name, str) for name in names) or len(set(names)) != len(names):
        return {}
    columns = [(name, values) for name, values in _leaves(table)
               if name != 'frames' and len(values) == len(names)]
    return {name: {metric: values[i] for metric, values in columns}
            for i, name in enumerate(names)}


def compare_evaluations(a, b, level=LEVEL):
    """{dotted metric name: PairedDifference of b - a} over the utterances (by file name) that
    both evaluation.json contents measured, for each metric both hold per utterance."""
    a, b = per_utterance_values(a), per_utterance_values(b)
    common = [name for name in a if name in b]
    if not common:
        return {}
    metrics = [metric for metric in a[common[0]] if metric in b[common[0]]]
    return {metric: paired_difference([a[name][metric] for name in common],
                                      [b[name][metric] for name in common], level)
            for metric in metrics}


def read_evaluation(folder, max_bytes):
    """The evaluation.json of a results folder (a dict), or None when it has none."""
    from common import runs
    path = os.path.join(folder, 'evaluation.json')
    if not os.path.lexists(path):
        return None
    evaluation = runs.read_json(path, 'evaluation.json', max_bytes)
    return evaluation if isinstance(evaluation, dict) else None
