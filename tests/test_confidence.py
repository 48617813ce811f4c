"""common.confidence: t intervals over utterances and paired comparisons of two runs."""
import numpy
import pytest
import scipy.stats

import common  # noqa: F401
from common import confidence


def test_t_interval_of_a_textbook_sample():
    """1..5: mean 3, s = sqrt(2.5), t(0.975, 4) = 2.776445 (tables): 3 -+ 1.963243."""
    mean, interval = confidence.mean_interval([1, 2, 3, 4, 5])
    assert mean == 3.0
    assert interval == pytest.approx([3 - 1.963243, 3 + 1.963243], abs=1e-6)


def test_undefined_values_are_left_out_and_one_value_has_no_interval():
    assert confidence.mean_interval([None, 2.0, None, 4.0])[0] == 3.0
    assert confidence.mean_interval([None, 7.0]) == (7.0, None)
    assert confidence.mean_interval([None, None]) == (None, None)
    assert confidence.mean_interval([2.5, 2.5, 2.5]) == (2.5, [2.5, 2.5])


def test_the_paired_test_is_scipys_paired_t_test():
    rng = numpy.random.default_rng(3)
    a = rng.normal(5.0, 1.0, 20)  # utterances differ a lot from one another ...
    b = a + rng.normal(0.3, 0.2, 20)  # ... the runs by a little, consistently
    difference = confidence.paired_difference(list(a), list(b))
    reference = scipy.stats.ttest_rel(b, a)
    assert difference.p_value == pytest.approx(reference.pvalue, rel=1e-9)
    assert difference.n == 20 and difference.mean == pytest.approx(numpy.mean(b - a))
    assert difference.supported is True and difference.verdict() == 'b > a'
    # The runs' own intervals overlap: without the pairing the difference is not visible.
    low_b = confidence.mean_interval(b)[1][0]
    assert low_b < confidence.mean_interval(a)[1][1]


def test_identical_runs_are_no_difference():
    values = [3.1, 2.7, None, 4.4, 3.9]
    difference = confidence.paired_difference(values, list(values))
    assert difference.n == 4 and difference.mean == 0.0
    assert difference.supported is False and difference.p_value == 1.0
    assert difference.verdict() == 'no difference shown'


def test_noise_alone_is_not_supported_and_a_constant_shift_is():
    rng = numpy.random.default_rng(0)
    a = rng.normal(0, 1, 14)
    assert confidence.paired_difference(list(a), list(a + rng.normal(0, 0.01, 14))).supported \
        is False
    shifted = confidence.paired_difference(list(a), list(a - 0.5))
    assert shifted.supported is True and shifted.verdict() == 'b < a'
    assert confidence.paired_difference([1.0], [2.0]).verdict() == 'too few utterances'
    with pytest.raises(ValueError, match='count'):
        confidence.paired_difference([1.0], [1.0, 2.0])


def evaluation(files, stoi, extra=None):
    per_utterance = {'file': files, 'frames': [100] * len(files),
                     'autoencoder_griffin_lim': {'stoi': stoi}}
    per_utterance.update(extra or {})
    return {'files': len(files), 'per_utterance': per_utterance}


def test_runs_are_paired_by_file_over_the_utterances_both_measured():
    a = evaluation(['x.wav', 'y.wav', 'z.wav', 'w.wav'], [0.5, 0.6, 0.7, 0.8],
                   {'spectrogram_mse': [1.0, 2.0, 3.0, 4.0]})
    b = evaluation(['z.wav', 'y.wav', 'x.wav', 'v.wav'], [0.8, 0.7, 0.6, 0.1])
    differences = confidence.compare_evaluations(a, b)
    assert list(differences) == ['autoencoder_griffin_lim.stoi']  # only in both; no frames
    stoi = differences['autoencoder_griffin_lim.stoi']
    assert stoi.n == 3 and stoi.mean == pytest.approx(0.1)  # x, y, z each 0.1 higher
    assert stoi.supported is True
    assert confidence.compare_evaluations(a, {'mcd_db': 3.0}) == {}  # an older evaluation.json


@pytest.mark.parametrize('per_utterance', [
    None, [], {'file': 'x.wav'}, {'file': ['x.wav', 'x.wav']}, {'file': [1, 2]},
])
def test_malformed_per_utterance_values_are_ignored(per_utterance):
    assert confidence.per_utterance_values({'per_utterance': per_utterance}) == {}


def test_columns_of_the_wrong_length_are_left_out():
    values = confidence.per_utterance_values(evaluation(['x', 'y'], [0.5], {'lsd_db': [1, 2]}))
    assert values == {'x': {'lsd_db': 1}, 'y': {'lsd_db': 2}}
