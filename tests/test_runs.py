"""Results folders from elsewhere are data: what summary.json names never runs, what it holds is
checked, and every tool that opens a folder says what is wrong in one line (exit status 2).

Crafted folders throughout; a payload writes a marker file when it runs, and each test asserts
the marker does not exist afterwards.
"""
import json
import os
import subprocess
import sys

import pytest

import common  # noqa: F401

from conftest import REPOSITORY
from common import compare, dataset, evaluate, latent, reconstruct, report, runs
from common.autoencoder import AutoEncoder


def payload(path, marker):
    """A Python file that creates ``marker`` when it is imported or run."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('open({!r}, "w").close()\nNet = None\ndescribe = None\n'.format(str(marker)))
    return path


def results_folder(folder, summary, log=None):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / 'summary.json').write_text(summary if isinstance(summary, str)
                                         else json.dumps(summary))
    (folder / 'log').write_text(json.dumps([{'epoch': 1, 'main/loss': 1.0}] if log is None
                                           else log))
    (folder / 'model.npz').write_bytes(b'')
    return folder


def summary_of(net, experiment=None, **fields):
    return dict({'experiment': experiment or net.split('/')[0], 'net': net,
                 'parameters': 102054657}, **fields)


@pytest.fixture(scope='module')
def utterance():
    import pysptk.util
    return pysptk.util.example_audio_file()


def tools(folder, out, utterance):
    """Every command that opens a results folder: name -> (main, argv)."""
    return {
        'evaluate': (evaluate.main, [str(folder), '--max-files', '1']),
        'reconstruct': (reconstruct.main, [str(folder), utterance, str(out / 'out.wav')]),
        'encode': (latent.main, ['encode', str(folder), utterance, str(out / 'out.npz')]),
        'decode': (latent.main, ['decode', str(folder), str(out / 'in.npz'),
                                 str(out / 'out.wav')]),
        'report': (report.main, [str(folder)]),
        'compare': (compare.main, [str(folder), '--out', str(out / 'compare')]),
    }


TOOLS = ['evaluate', 'reconstruct', 'encode', 'decode', 'report', 'compare']


def assert_refused(capsys, main, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and 'Traceback' not in err, err
    assert message in lines[0], lines[0]


# -- 1. the net a summary names ---------------------------------------------------------------

NETS = {
    # case: (net, message part)
    'absolute path': ('{tmp}/x/evil.py:Net', 'is not of the form <experiment>/net.py:<Class>'),
    'escaping path': ('../../{tmp_relative}/x/evil.py:Net', 'is not of the form'),
    'a results folder': ('results/friend/net.py:Net', 'is not of the form'),
    'a repository function': ('common/env.py:describe', 'is not of the form'),
    'not a string': (7, 'is not of the form'),
    'a list': (['bc7db4a2/net.py', 'Net'], 'is not of the form'),
    'not .py': ('bc7db4a2/net.txt:Net', 'is not of the form'),
}


@pytest.mark.parametrize('tool', TOOLS)
@pytest.mark.parametrize('case', sorted(NETS))
def test_a_net_outside_the_experiment_folders_never_runs(case, tool, tmp_path, utterance,
                                                         capsys):
    marker = tmp_path / 'marker'
    payload(tmp_path / 'x' / 'evil.py', marker)
    net, message = NETS[case]
    if isinstance(net, str):
        net = net.format(tmp=tmp_path, tmp_relative=os.path.relpath(tmp_path, REPOSITORY))
    folder = results_folder(tmp_path / 'run', summary_of(net, experiment='bc7db4a2'))
    main, argv = tools(folder, tmp_path, utterance)[tool]
    assert_refused(capsys, main, argv, message)
    assert not marker.exists()


@pytest.mark.parametrize('tool', ['evaluate', 'reconstruct', 'encode', 'compare'])
def test_the_base_class_that_net_py_imports_is_no_net(tool, tmp_path, utterance, capsys):
    """"net": "bc7db4a2/net.py:AutoEncoder" names a class that net.py imports, the base of
    every net (no layers): once a traceback in every tool that builds the net."""
    folder = results_folder(tmp_path / 'run', summary_of(
        'bc7db4a2/net.py:AutoEncoder', dataset={'path': dataset.DEMO_CORPUS}))
    main, argv = tools(folder, tmp_path, utterance)[tool]
    assert_refused(capsys, main, argv, 'defines no AutoEncoder class AutoEncoder')


@pytest.fixture
def repository(tmp_path, monkeypatch):
    """A repository with payloads where a shared folder could put them: its results/ and data/
    folders, a folder without train.py, and a link to an experiment outside it."""
    root = tmp_path / 'repository'
    marker = tmp_path / 'marker'
    for folder in ('results', 'data', 'no_train', 'outside'):
        payload(root / folder / 'net.py', marker)
        if folder != 'no_train':
            (root / folder / 'train.py').write_text('')
    os.rename(root / 'outside', tmp_path / 'outside')
    os.symlink(tmp_path / 'outside', root / 'linked')
    monkeypatch.setattr(runs, 'REPOSITORY', str(root))
    return root, marker


@pytest.mark.parametrize('experiment, message', [
    ('results', 'results is not an experiment folder'),
    ('data', 'data is not an experiment folder'),
    ('no_train', 'no train.py'),
    ('linked', 'not an experiment of this repository'),
    ('absent', 'not an experiment of this repository'),
])
def test_only_experiment_folders_of_the_repository_are_imported(experiment, message,
                                                                repository):
    _, marker = repository
    with pytest.raises(runs.RunError) as error:
        runs.net_class('{}/net.py:Net'.format(experiment))
    assert message in str(error.value)
    assert not marker.exists()


def test_through_a_tool_a_results_net_py_never_runs(repository, tmp_path, utterance, capsys):
    _, marker = repository
    folder = results_folder(tmp_path / 'run', summary_of('results/net.py:Net'))
    assert_refused(capsys, reconstruct.main, [str(folder), utterance, str(tmp_path / 'o.wav')],
                   'results is not an experiment folder')
    assert not marker.exists()


def test_the_class_must_be_an_autoencoder():
    assert issubclass(runs.net_class('bc7db4a2/net.py:Net'), AutoEncoder)
    for name in ('Box', 'common', 'Absent'):  # a namedtuple, a module, nothing
        with pytest.raises(runs.RunError, match='defines no AutoEncoder class ' + name):
            runs.net_class('bc7db4a2/net.py:' + name)


def test_net_and_experiment_must_agree(tmp_path):
    folder = results_folder(tmp_path / 'run', summary_of('c9335bce/net.py:Net', 'bc7db4a2'))
    with pytest.raises(runs.RunError, match='is not the net of experiment bc7db4a2'):
        runs.load_summary(str(folder))


# -- 2. the experiment id ---------------------------------------------------------------------

def test_report_reads_no_readme_outside_the_experiment_folders(tmp_path):
    """"experiment": "../../somewhere" once put another folder's README into the page."""
    secret = tmp_path / 'somewhere'
    secret.mkdir()
    (secret / 'README.md').write_text('# Secret\n\n## Purpose\n\nprivate notes\n')
    relative = os.path.relpath(secret, REPOSITORY)
    folder = results_folder(tmp_path / 'run', summary_of(relative + '/net.py:Net', relative))
    result = subprocess.run([sys.executable, '-m', 'common.report', str(folder)],
                            capture_output=True, text=True, cwd=REPOSITORY, timeout=300)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and 'Traceback' not in result.stderr
    assert 'is not of the form' in lines[0] or 'is not an experiment id' in lines[0]
    assert not (folder / 'index.html').exists()


def test_an_unknown_experiment_reads_nothing(tmp_path):
    texts = report.experiment_texts('results')
    assert texts['title'] == 'Experiment results' and texts['remarks'] == ''
    assert 'not an experiment folder' in texts['purpose']
    assert 'fully connected' in report.experiment_texts('bc7db4a2')['purpose']


# -- bad summary.json and log: one line, exit status 2, from every tool ------------------------

SUMMARIES = {
    'a number': ('3', 'summary.json is a number, not an object'),
    'null': ('null', 'summary.json is null, not an object'),
    'a list': ('[1, 2]', 'summary.json is a list, not an object'),
    'a string': ('"bc7db4a2"', 'summary.json is a string, not an object'),
    'not JSON': ('{"experiment": ', 'unreadable summary.json'),
    'deeply nested': ('[' * 100000 + ']' * 100000, 'unreadable summary.json'),
    'parameters a string': (summary_of('bc7db4a2/net.py:Net', parameters='many'),
                            '"parameters" must be a positive integer, not "many"'),
    'hyperparameters a list': (summary_of('bc7db4a2/net.py:Net', hyperparameters=[1]),
                               '"hyperparameters" must be an object'),
    'seed a string': (summary_of('bc7db4a2/net.py:Net', hyperparameters={'seed': 'x'}),
                      '"hyperparameters.seed" must be an integer'),
    # Seeds no run takes: NumPy seeds with 0 .. 2**32 - 1 (evaluate's split once crashed on -1).
    'seed negative': (summary_of('bc7db4a2/net.py:Net', hyperparameters={'seed': -1}),
                      '"hyperparameters.seed" must be an integer from 0 to 4294967295, not -1'),
    'seed too large': (summary_of('bc7db4a2/net.py:Net', hyperparameters={'seed': 2 ** 32}),
                       '"hyperparameters.seed" must be an integer from 0 to 4294967295'),
    'hours beyond a float': ('{"experiment": "bc7db4a2", "net": "bc7db4a2/net.py:Net", '
                             '"parameters": 1, "training_hours": 1' + '0' * 400 + '}',
                             '"training_hours" must be a number'),
    'latent shape malformed': (summary_of('bc7db4a2/net.py:Net', latent_shape=[4096, -16]),
                               '"latent_shape" must be a list of positive integers'),
    'input shape of one axis': (summary_of('bc7db4a2/net.py:Net', input_shape=[256]),
                                '"input_shape" must be three positive integers, not [256]'),
    'training hours a string': (summary_of('bc7db4a2/net.py:Net', training_hours='1 h'),
                                '"training_hours" must be a number'),
    'experiment escapes': (summary_of('bc7db4a2/net.py:Net', experiment='../../x'),
                           'is not an experiment id'),
    'too large': ('{"x": "' + 'x' * (2 ** 20) + '"}', 'more than the 1.0 MiB'),
}


@pytest.mark.parametrize('tool', TOOLS)
@pytest.mark.parametrize('case', sorted(SUMMARIES))
def test_a_bad_summary_is_one_line(case, tool, tmp_path, utterance, capsys):
    summary, message = SUMMARIES[case]
    folder = results_folder(tmp_path / 'run', summary)
    main, argv = tools(folder, tmp_path, utterance)[tool]
    assert_refused(capsys, main, argv, message)


def test_a_summary_that_is_a_fifo_does_not_hang(tmp_path, capsys):
    folder = results_folder(tmp_path / 'run', {})
    (folder / 'summary.json').unlink()
    os.mkfifo(str(folder / 'summary.json'))
    assert_refused(capsys, report.main, [str(folder)], 'not a regular file')


LOGS = {
    'a number': ('3', 'not a LogReport log'),
    'a list of numbers': ('[1, 2]', 'not a LogReport log'),
    'epoch a string': ('[{"epoch": "one"}]', '"epoch" must be an integer'),
    'no epoch': ('[{"main/loss": 1.0}]', 'an entry has no "epoch"'),
    'a folder': (None, 'not a regular file'),
    'too large': ('[' + ' ' * (64 * 2 ** 20) + ']', 'more than the 64.0 MiB'),
    # Values JSON holds but no LogReport writes, which crashed compare's plot.
    'epoch Infinity': ('[{"epoch": 1, "main/loss": 1.0}, {"epoch": Infinity, "main/loss": 1.0}]',
                       '"epoch" must be an integer from 0 to 9007199254740992, not Infinity'),
    'epoch 1e308': ('[{"epoch": 1, "main/loss": 1.0}, {"epoch": 1e308, "main/loss": 1.0}]',
                    '"epoch" must be an integer'),
    'epoch negative': ('[{"epoch": -1}]', '"epoch" must be an integer from 0'),
    'iteration beyond a float': ('[{"epoch": 1, "iteration": 1' + '0' * 400 + '}]',
                                 '"iteration" must be an integer from 0'),
    'loss beyond a float': ('[{"epoch": 1, "main/loss": 1' + '0' * 400 + '}]',
                            '"main/loss" must be a number'),
}


@pytest.mark.parametrize('tool', ['report', 'compare'])
@pytest.mark.parametrize('case', sorted(LOGS))
def test_a_bad_log_is_one_line(case, tool, tmp_path, utterance, capsys):
    folder = results_folder(tmp_path / 'run', summary_of('bc7db4a2/net.py:Net'))
    log, message = LOGS[case]
    (folder / 'log').unlink()
    if log is None:
        (folder / 'log').mkdir()
    else:
        (folder / 'log').write_text(log)
    main, argv = tools(folder, tmp_path, utterance)[tool]
    assert_refused(capsys, main, argv, message)


def test_a_page_that_cannot_be_written_is_one_line(tmp_path, capsys):
    """report writes index.html into the folder, which may be a read-only or full copy; here
    a folder stands where the page would go."""
    folder = results_folder(tmp_path / 'run', summary_of('bc7db4a2/net.py:Net'))
    (folder / 'index.html').mkdir()
    assert_refused(capsys, report.main, [str(folder)], 'cannot write {}'.format(
        folder / 'index.html'))
    assert sorted(p.name for p in folder.iterdir()) == ['index.html', 'log', 'model.npz',
                                                        'summary.json']
