"""The results folders committed under results/ are what they claim to be (issues 20 and 26).

For every committed run (a folder holding summary.json): its summary's final numbers are the
log's last entry; every file its index.html links to exists; and where its model.npz is
committed, the model loads through common/npz.py and reproduces the committed evaluation of a
validation utterance to rounding.  Every committed page (runs, comparisons, the experiment log)
links only to files that exist.
"""
import html.parser
import json
import math
import os
import urllib.parse

import pytest

from conftest import REPOSITORY
from common import audio, dataset, evaluate, metrics, runs

RESULTS = os.path.join(REPOSITORY, 'results')


def folders_holding(name):
    return sorted(entry for entry in os.listdir(RESULTS)
                  if os.path.isfile(os.path.join(RESULTS, entry, name)))


RUNS = folders_holding('summary.json')
PAGES = folders_holding('index.html')
MODELS = folders_holding('model.npz')


class Links(html.parser.HTMLParser):
    """The relative href/src targets of a page (no scheme, no fragment-only links)."""

    def __init__(self):
        super().__init__()
        self.targets = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ('href', 'src') and value and not value.startswith('#'):
                parsed = urllib.parse.urlparse(value)
                if not parsed.scheme and not parsed.netloc:
                    self.targets.append(urllib.parse.unquote(parsed.path))


def test_the_cpu_learning_runs_and_their_comparison_are_committed():
    assert {'bc7db4a2-cpu-learning', 'c9335bce-cpu-learning'} <= set(RUNS)
    assert 'compare-cpu-learning' in PAGES
    assert 'c9335bce-cpu-learning' in MODELS  # 13 MB: every tool can be tried without training
    for name in ('bc7db4a2-cpu-learning', 'c9335bce-cpu-learning'):
        assert os.path.isfile(os.path.join(RESULTS, name, 'evaluation.json')), name


@pytest.mark.parametrize('name', RUNS)
def test_the_summary_is_the_logs_last_entry(name):
    folder = os.path.join(RESULTS, name)
    summary = runs.load_summary(folder)
    last = runs.load_log(folder)[-1]
    assert summary['final_training_mse'] == last['main/loss']
    assert summary['final_validation_mse'] == last['validation/main/loss']
    assert summary['epochs_completed'] == last['epoch'] == summary['hyperparameters']['epoch']
    assert summary['iterations'] == last['iteration']


@pytest.mark.parametrize('name', PAGES + ['.'])
def test_every_file_a_page_links_to_exists(name):
    folder = os.path.normpath(os.path.join(RESULTS, name))
    if not os.path.isfile(os.path.join(folder, 'index.html')):
        pytest.skip('no experiment log written in results/')
    parser = Links()
    with open(os.path.join(folder, 'index.html'), encoding='utf-8') as stream:
        parser.feed(stream.read())
    assert parser.targets, 'a page without links'
    missing = [target for target in parser.targets
               if not os.path.exists(os.path.join(folder, *target.split('/')))]
    assert missing == []


def close(committed, measured, griffin_lim=False):
    """Equal to the committed rounding (evaluation.json keeps 6 significant digits).  A
    Griffin-Lim rendering's numbers are equal within 2 % (0.01 absolute): its 100 iterations
    amplify the last-bit differences of another NumPy's FFT (measured: STOI 0.3350 here,
    0.3385 with Python 3.13's NumPy, from the same model and input)."""
    if committed is None or measured is None:
        return committed is None and measured is None
    if griffin_lim:
        return math.isclose(committed, measured, rel_tol=2e-2, abs_tol=1e-2)
    return math.isclose(committed, measured, rel_tol=2e-3, abs_tol=2e-3)


@pytest.mark.parametrize('name', MODELS)
def test_the_committed_model_reproduces_its_committed_evaluation(name):
    """The shortest validation utterance through the committed model (read by common/npz.py),
    measured as common.evaluate measured it: every per-utterance number within rounding."""
    folder = os.path.join(RESULTS, name)
    model, summary = runs.load_model(folder)
    with open(os.path.join(folder, 'evaluation.json'), encoding='utf-8') as stream:
        evaluation = json.load(stream)
    table = evaluation['per_utterance']
    index = min(range(len(table['file'])), key=lambda i: table['frames'][i])
    path = os.path.join(dataset.DEMO_CORPUS, *table['file'][index].split('/'))
    assert os.path.normpath(summary['dataset']['path']).endswith(os.path.join('data', 'demo'))
    result = evaluate.evaluate_utterance(
        model, audio.load(path), griffin_lim_iterations=evaluation['griffin_lim_iterations'],
        f0_method=evaluation['f0_method'], pesq=not metrics.pesq_unavailable())
    assert result['frames'] == table['frames'][index]
    compared = 0
    for key in ('spectrogram_mse', 'spectrogram_lsd_db'):
        assert close(table[key][index], result[key]), key
        compared += 1
    for rendering in [key for key, _ in evaluate.RENDERINGS]:
        for measure, values in table[rendering].items():
            if measure == 'pesq_nb' and metrics.pesq_unavailable():
                continue
            assert close(values[index], result[rendering][measure],
                         griffin_lim='griffin_lim' in rendering), (rendering, measure)
            compared += 1
    assert compared >= 20
