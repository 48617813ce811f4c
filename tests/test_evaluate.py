"""common.evaluate on a finished tiny bc7db4a2 run."""
import json
import math
import os
import shutil
import subprocess
import sys

import pytest

import common  # noqa: F401
from common import evaluate

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RENDERINGS = ('griffin_lim_input', 'autoencoder_griffin_lim', 'autoencoder_true_phase')
MEASURES = ('mcd_db', 'lsd_db', 'spectral_convergence')


def copy_run(run, folder, summary=None):
    """A results folder with the run's summary (or `summary`) and log, model.npz linked."""
    folder.mkdir()
    with open(run / 'summary.json') as f:
        content = json.load(f)
    content.update(summary or {})
    with open(folder / 'summary.json', 'w') as f:
        json.dump(content, f)
    shutil.copy(run / 'log', folder / 'log')
    os.symlink(run / 'model.npz', folder / 'model.npz')
    return folder


def numbers(evaluation):
    for key, value in evaluation.items():
        if isinstance(value, dict):
            yield from numbers(value)
        else:
            assert isinstance(value, (int, float)) and not isinstance(value, bool), (key, value)
            yield value


def test_evaluate_writes_evaluation_json(bc7db4a2_run, tmp_path):
    folder = copy_run(bc7db4a2_run, tmp_path / 'run')
    result = subprocess.run([sys.executable, '-m', 'common.evaluate', str(folder),
                             '--max-files', '2'], capture_output=True, text=True,
                            cwd=REPOSITORY, timeout=300)
    assert result.returncode == 0, result.stderr
    assert 'AutoEncoder output, Griffin-Lim' in result.stdout  # the table
    with open(folder / 'evaluation.json') as f:
        evaluation = json.load(f)
    assert evaluation['files'] == 2
    assert evaluation['validation_files'] == 14  # the demo corpus, seed 0, as training split it
    assert evaluation['griffin_lim_iterations'] == 100
    assert all(math.isfinite(value) for value in numbers(evaluation))
    for rendering in RENDERINGS:
        assert sorted(evaluation[rendering]) == sorted(MEASURES)
        assert evaluation[rendering]['mcd_db'] > 0
    # the barely trained network is far worse than Griffin-Lim alone
    assert (evaluation['autoencoder_griffin_lim']['mcd_db']
            > evaluation['griffin_lim_input']['mcd_db'])
    assert evaluation['spectrogram_mse'] > 1
    assert evaluation['spectrogram_lsd_db'] > evaluation['griffin_lim_input']['lsd_db']


def test_evaluate_on_the_pysptk_utterance(bc7db4a2_run, tmp_path):
    """--dataset: any folder; one file is on both sides of the split."""
    import pysptk.util
    corpus = tmp_path / 'arctic'
    corpus.mkdir()
    shutil.copy(pysptk.util.example_audio_file(), corpus)
    folder = copy_run(bc7db4a2_run, tmp_path / 'run')
    lines = []
    result = evaluate.evaluate(str(folder), str(corpus), griffin_lim_iterations=20,
                               f0_method='dio', log=lines.append)
    assert result['files'] == 1
    assert [line for line in lines if line.startswith('[')][0].startswith('[1/1] arctic_a0007.wav')
    assert 3.5 < result['seconds'] < 4.1
    assert 0 < result['griffin_lim_input']['mcd_db'] < 8
    assert 0 < result['griffin_lim_input']['spectral_convergence'] < 1
    assert 0 < result['griffin_lim_input']['lsd_db'] < 3
    with open(folder / 'evaluation.json') as f:
        assert json.load(f) == result
    assert 'MCD' in evaluate.table(result)


@pytest.fixture
def folders(bc7db4a2_run, tmp_path):
    nomodel = tmp_path / 'nomodel'
    nomodel.mkdir()
    shutil.copy(bc7db4a2_run / 'summary.json', nomodel)
    moved = copy_run(bc7db4a2_run, tmp_path / 'moved',
                     {'dataset': {'path': str(tmp_path / 'gone')}})
    return {'nomodel': nomodel, 'moved': moved, 'run': bc7db4a2_run, 'empty': tmp_path}


@pytest.mark.parametrize('folder, flags, message', [
    ('nomodel', [], 'no model.npz'),
    ('empty', [], 'not a finished run'),
    ('moved', [], 'is not there; give --dataset'),
    ('run', ['--dataset', 'DOES-NOT-EXIST'], 'corpus folder does not exist'),
])
def test_evaluate_bad_input(folders, folder, flags, message, capsys):
    flags = [str(folders['empty'] / 'absent') if flag == 'DOES-NOT-EXIST' else flag
             for flag in flags]
    assert evaluate.main([str(folders[folder])] + flags + ['--max-files', '1']) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('python -m common.evaluate: error: ')
    assert message in err[0]
    assert not (folders[folder] / 'evaluation.json').exists()
