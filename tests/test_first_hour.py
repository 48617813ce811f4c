"""The first hour of a new user (issue 25): where results go, what git ignores, an interpreter
without the dependencies, re-running the quick start, and a copied experiment README."""
import ast
import os
import re
import shutil
import subprocess
import sys

import pytest

import common

from conftest import (REPOSITORY, TINY_RUN, copy_repository, load_experiment_module,
                      run_experiment)


def one_line(result, status=2):
    assert result.returncode == status, result.stdout[-2000:] + result.stderr[-3000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and 'Traceback' not in result.stderr, result.stderr[-3000:]
    return lines[0]


# -- item 3: results are never written inside the record, and never committed ---------------

def test_the_default_results_folder_does_not_depend_on_the_working_directory(tmp_path,
                                                                             monkeypatch):
    train = load_experiment_module('bc7db4a2', 'train')
    expected = os.path.join(REPOSITORY, 'results', 'bc7db4a2')
    for folder in (os.path.join(REPOSITORY, 'bc7db4a2'), str(tmp_path)):
        monkeypatch.chdir(folder)  # cd bc7db4a2 && python train.py: not bc7db4a2/results/
        assert train.parse_args([]).out == expected
        # An explicit relative --out stays relative to where the user is, as everywhere.
        assert train.parse_args(['--out', 'mine']).out == 'mine'


def test_train_py_run_from_its_own_folder_names_the_repository_results_folder():
    result = subprocess.run([sys.executable, 'train.py', '--help'], capture_output=True,
                            text=True, timeout=120, cwd=os.path.join(REPOSITORY, 'c9335bce'))
    assert result.returncode == 0, result.stderr
    shown = ' '.join(result.stdout.split())
    assert os.path.join(REPOSITORY, 'results', 'c9335bce') in shown.replace(' ', '') \
        or os.path.join(REPOSITORY, 'results', 'c9335bce') in shown


IGNORED = [  # what runs write, wherever --out puts it inside the repository
    'bc7db4a2/results/bc7db4a2/model.npz',  # cd bc7db4a2 && python train.py (issue 25)
    'bc7db4a2/results/bc7db4a2/loss.png',
    'results/bc7db4a2/model.npz',
    'results/bc7db4a2/snapshot_iter_4000',
    'results/bc7db4a2/.lock',
    'results/bc7db4a2/.model.npz.k2j3h4.tmp',
    'results/bc7db4a2/utterance/.output.wav.k2j3h4.tmp',
    'results/bc7db4a2/tmpsnapshot_iter_4000xyz/snapshot_iter_4000',
    'results/bc7db4a2/logk2j3_h4q/log.json',
    'results/bc7db4a2-cpu-demo/loss.png',
    'runs/mine/model.npz',
    'runs/mine/snapshot_iter_30',
    'runs/mine/.lock',
    'e1/results/e1/summary.json',
]
KEPT = ['bc7db4a2/train.py', 'bc7db4a2/README.md', 'results/README.md',
        'results/bc7db4a2/loss.png', 'results/bc7db4a2/summary.json',
        'data/demo/espeak_en-029_m7/001.flac', 'common/npz.py']


@pytest.mark.skipif(not os.path.exists(os.path.join(REPOSITORY, '.git')),
                    reason='not a git checkout: no .gitignore to apply')
def test_gitignore_covers_what_runs_write_wherever_they_write_it():
    def ignored(paths):
        result = subprocess.run(['git', 'check-ignore', '--no-index', '--stdin'],
                                input='\n'.join(paths), capture_output=True, text=True,
                                cwd=REPOSITORY, timeout=60)
        assert result.returncode in (0, 1), result.stderr
        return set(result.stdout.split())
    assert ignored(IGNORED) == set(IGNORED)
    assert ignored(KEPT) == set()


# -- item 4: an interpreter without the dependencies; re-running the quick start --------------

@pytest.fixture(scope='module')
def bare_python(tmp_path_factory):
    """A fresh virtual environment without any package: a new user's plain `python`."""
    folder = tmp_path_factory.mktemp('bare') / 'venv'
    base = getattr(sys, '_base_executable', None) or sys.executable
    subprocess.run([base, '-m', 'venv', '--without-pip', str(folder)], check=True, timeout=120)
    python = str(folder / 'bin' / 'python')
    assert subprocess.run([python, '-c', 'import numpy'], capture_output=True).returncode != 0
    return python


@pytest.mark.parametrize('command, cwd, prog', [
    (['bc7db4a2/train.py', '--gpu', '-1'], '', 'train.py'),
    (['train.py'], 'c9335bce', 'train.py'),
    (['-m', 'common.evaluate', 'results/bc7db4a2'], '', 'python -m common.evaluate'),
    (['-m', 'common.reconstruct', 'results/x', 'in.flac', 'out.wav'], '',
     'python -m common.reconstruct'),
    (['-m', 'common.env'], '', 'python -m common.env'),
])
def test_an_interpreter_without_the_dependencies_says_which_to_use_in_one_line(
        bare_python, command, cwd, prog):
    result = subprocess.run([bare_python] + command, capture_output=True, text=True,
                            timeout=120, cwd=os.path.join(REPOSITORY, cwd))
    line = one_line(result)
    assert line.startswith(prog + ': error: this Python ('), line
    assert 'numpy' in line and 'chainer' in line
    assert '.venv/bin/python' in line and ' '.join(command) in line


def test_the_dependency_check_lists_every_requirement_of_setup_py():
    with open(os.path.join(REPOSITORY, 'setup.py')) as f:
        tree = ast.parse(f.read())
    call = next(node for node in ast.walk(tree) if isinstance(node, ast.Call)
                and getattr(node.func, 'id', None) == 'setup')
    requires = next(ast.literal_eval(keyword.value) for keyword in call.keywords
                    if keyword.arg == 'install_requires')
    names = {re.match(r'[A-Za-z0-9_.-]+', requirement).group(0).lower()
             for requirement in requires}
    assert names == {distribution for _, distribution in common.REQUIREMENTS}


def test_without_a_snapshot_a_finished_folder_suggests_force_not_resume(tmp_path):
    out = tmp_path / 'demo'
    flags = TINY_RUN + ['--snapshots-kept', '0', '--out', str(out)]
    first = run_experiment('c9335bce', *flags)
    assert first.returncode == 0, first.stderr[-3000:]
    assert not list(out.glob('snapshot_iter_*'))
    before = sorted(os.listdir(out))
    again = one_line(run_experiment('c9335bce', *flags))  # the quick start, run twice
    assert 'already holds a run' in again and 'no snapshot' in again
    assert '--force' in again and '--resume' not in again
    assert sorted(os.listdir(out)) == before
    assert 'no snapshot to resume from' in one_line(run_experiment('c9335bce', *flags,
                                                                   '--resume'))
    forced = run_experiment('c9335bce', *flags, '--force')
    assert forced.returncode == 0, forced.stderr[-3000:]


# -- item 6: the next-experiment recipe with the README left as copied ----------------------

def test_a_copied_readme_is_announced_as_a_warning_at_training_start_and_on_the_page(tmp_path):
    repository = copy_repository(tmp_path / 'repository')
    shutil.copytree(repository / 'c9335bce', repository / 'e1')  # cp -r c9335bce e1
    train = repository / 'e1' / 'train.py'
    # Its EXPERIMENT still says c9335bce: it would train e1/net.py as c9335bce, into
    # results/c9335bce, and the tools would load the model into c9335bce/net.py.
    before = sorted(os.listdir(repository / 'results'))
    unedited = subprocess.run([sys.executable, 'e1/train.py', *TINY_RUN], capture_output=True,
                              text=True, timeout=600, cwd=repository)
    line = one_line(unedited)
    assert "e1/train.py: EXPERIMENT = 'c9335bce', but the experiment's folder is e1" in line
    assert "set EXPERIMENT = 'e1'" in line
    assert sorted(os.listdir(repository / 'results')) == before
    train.write_text(train.read_text().replace("EXPERIMENT = 'c9335bce'", "EXPERIMENT = 'e1'"))
    out = repository / 'results' / 'e1'
    result = subprocess.run([sys.executable, 'e1/train.py', *TINY_RUN, '--snapshots-kept', '0',
                             '--out', str(out)], capture_output=True, text=True, timeout=600,
                            cwd=repository)
    assert result.returncode == 0, result.stderr[-3000:]
    warnings = [line for line in result.stdout.splitlines() if line.startswith('warning: ')]
    assert len(warnings) == 1, result.stdout[-3000:]
    assert 'e1/README.md is headed "Experiment c9335bce: implementing the AutoEncoder"' \
        in warnings[0] and 'make its heading name e1' in warnings[0]
    page = (out / 'index.html').read_text()
    assert '<h1>Experiment e1</h1>' in page and 'id="warning"' in page
    assert 'Experiment c9335bce: implementing' in page  # named in the warning, not as title

    readme = repository / 'e1' / 'README.md'
    readme.write_text(readme.read_text().replace('# Experiment c9335bce: implementing',
                                                 '# Experiment e1: trying', 1))
    rewrite = subprocess.run([sys.executable, '-m', 'common.report', str(out)],
                             capture_output=True, text=True, timeout=300, cwd=repository)
    assert rewrite.returncode == 0, rewrite.stderr
    page = (out / 'index.html').read_text()
    assert '<h1>Experiment e1: trying the AutoEncoder</h1>' in page
    assert 'id="warning"' not in page
