"""The results folder of a training run: no interruption, race or mistake leaves a wrong record.

Runs use c9335bce (3.3 M parameters), the smaller net, with the tiny flags of conftest; signals
are real signals sent to real training processes, and the full disk is a real small tmpfs.
"""
import contextlib
import errno
import os
import re
import shutil
import signal
import subprocess
import sys

import numpy
import pytest

import chainer

from conftest import (REPOSITORY, TINY_RUN, load_experiment_module, read_json, run_experiment,
                      start_experiment, wait_for, without_times)
from common import cli, dataset, preview, report, results, runs
from common import extensions as ext

# Training processes interrupted, refused and resumed: slow, so left out of the quick check
# (README.md: pytest -m "not slow").
pytestmark = pytest.mark.slow


def one_line_error(result, *words):
    assert result.returncode == 2, result.stderr[-3000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and 'Traceback' not in result.stderr, result.stderr[-3000:]
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def listing(folder):
    """The run's files and their modification times (the lock file changes hands)."""
    return {path.name: path.stat().st_mtime_ns for path in sorted(folder.iterdir())
            if path.name != results.LOCK}


def finished_copy(run, tmp_path, name):
    copy = tmp_path / name
    shutil.copytree(run, copy)
    return copy


# -- resume: the right snapshot into the right folder ---------------------------------------

def test_a_snapshot_of_another_run_does_not_replace_a_finished_run(c9335bce_run, tmp_path):
    other = tmp_path / 'other'
    result = run_experiment('c9335bce', *TINY_RUN, '--seed', '1', '--out', str(other))
    assert result.returncode == 0, result.stderr[-3000:]
    before = listing(other)
    summary_before = (other / 'summary.json').read_bytes()
    snapshot = ext.snapshots(str(c9335bce_run))[-1]

    refused = run_experiment('c9335bce', *TINY_RUN, '--resume', snapshot, '--out', str(other))
    one_line_error(refused, str(other), 'another run', '--force')
    assert listing(other) == before
    assert (other / 'summary.json').read_bytes() == summary_before

    # Told to, it continues the snapshot's run there (one more epoch) in place of the other.
    replaced = run_experiment('c9335bce', *TINY_RUN, '--epoch', '3', '--resume', snapshot,
                              '--out', str(other), '--force')
    assert replaced.returncode == 0, replaced.stderr[-3000:]
    summary = read_json(other / 'summary.json')
    assert summary['run'] == read_json(c9335bce_run / 'summary.json')['run']
    assert summary['epochs_completed'] == 3
    log = without_times(read_json(other / 'log'))
    assert log[:2] == without_times(read_json(c9335bce_run / 'log')) and len(log) == 3


def test_a_snapshot_of_another_experiment_is_refused_before_the_corpus_loads(c9335bce_run,
                                                                              tmp_path):
    snapshot = ext.snapshots(str(c9335bce_run))[-1]
    result = run_experiment('bc7db4a2', *TINY_RUN, '--resume', snapshot,
                            '--out', str(tmp_path / 'out'))
    one_line_error(result, 'experiment c9335bce', 'c9335bce/train.py')
    assert 'corpus' not in result.stdout


def test_files_that_are_not_snapshots_are_refused_in_one_line(c9335bce_run, tmp_path):
    snapshot = ext.snapshots(str(c9335bce_run))[-1]
    data = open(snapshot, 'rb').read()
    cases = {
        'truncated': data[:len(data) // 2],
        'empty': b'',
        'text': b'not a snapshot at all\n',
        'model': (c9335bce_run / 'model.npz').read_bytes(),  # an archive, but not a trainer's
    }
    for name, content in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        result = run_experiment('c9335bce', *TINY_RUN, '--resume', str(path),
                                '--out', str(tmp_path / ('out-' + name)))
        line = one_line_error(result, str(path))
        assert 'snapshot' in line, line
        assert 'corpus' not in result.stdout, name


# -- one training process per folder ---------------------------------------------------------

def test_a_second_training_process_is_refused_while_the_first_runs(tmp_path):
    out = tmp_path / 'run'
    first = start_experiment('c9335bce', *TINY_RUN, '--epoch', '200', '--out', str(out))
    try:
        wait_for(out / 'snapshot_iter_2', first)
        second = run_experiment('c9335bce', *TINY_RUN, '--force', '--out', str(out))
        line = one_line_error(second, 'another training process', 'pid {}'.format(first.pid))
        assert str(out) in line
        assert first.poll() is None
        assert (out / 'log').exists() and ext.snapshots(str(out))  # --force removed nothing
    finally:
        first.kill()
        first.wait()


# -- interruptions ---------------------------------------------------------------------------

@pytest.mark.parametrize('signum', [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_and_resumed_run_ends_with_the_log_of_an_uninterrupted_one(signum,
                                                                                  tmp_path):
    flags = TINY_RUN + ['--epoch', '3']
    whole = tmp_path / 'whole'
    assert run_experiment('c9335bce', *flags, '--out', str(whole)).returncode == 0

    out = tmp_path / 'interrupted'
    process = start_experiment('c9335bce', *flags, '--out', str(out))
    wait_for(out / 'snapshot_iter_2', process)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 2, stderr[-3000:]
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and 'Traceback' not in stderr
    assert 'interrupted ({})'.format('Ctrl-C' if signum == signal.SIGINT else 'SIGTERM') \
        in lines[0] and '--resume' in lines[0]
    stopped_at = int(re.search(r'iteration (\d+)', lines[0]).group(1))
    assert ext.snapshots(str(out))[-1].endswith('snapshot_iter_{}'.format(stopped_at))
    assert not (out / 'summary.json').exists()
    assert not list(out.glob('tmpsnapshot_*'))

    resumed = run_experiment('c9335bce', *flags, '--out', str(out), '--resume')
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    log = read_json(out / 'log')
    assert without_times(log) == without_times(read_json(whole / 'log'))
    summary = read_json(out / 'summary.json')
    assert summary['final_training_mse'] == log[-1]['main/loss']
    assert summary['final_validation_mse'] == log[-1]['validation/main/loss']
    assert summary['epochs_completed'] == 3


def test_the_nan_stop_and_the_interrupt_snapshot_run_in_their_place_in_an_iteration():
    import chainermn.extensions
    priorities = {'StopOnNonFinite': ext.StopOnNonFinite.priority,
                  'snapshot_on_interrupt': ext.SnapshotOnInterrupt.priority,
                  'Evaluator': chainer.training.extensions.Evaluator.priority,
                  'LogReport': chainer.training.extensions.LogReport.priority,
                  'PlotReport': chainer.training.extensions.PlotReport.priority,
                  'preview': preview.Preview.priority,
                  'snapshot': ext.snapshot().priority}
    # The NaN stop: after ChainerMN's loss aggregator, before what writes the iteration down.
    aggregator = chainermn.extensions.ObservationAggregator.priority
    assert aggregator > priorities['StopOnNonFinite'] > max(
        priorities[name] for name in ('LogReport', 'PlotReport', 'preview', 'snapshot'))
    # The interrupt snapshot: the very last, after the evaluation and the log entry.
    assert priorities['snapshot_on_interrupt'] == min(priorities.values())


def test_continuing_a_finished_run_removes_its_finish_until_it_finishes_again(c9335bce_run,
                                                                              tmp_path):
    out = finished_copy(c9335bce_run, tmp_path, 'continued')
    # Leftovers of writes that a killed process left behind.
    (out / 'tmpsnapshot_iter_7abcd').mkdir()
    (out / 'tmpsnapshot_iter_7abcd' / 'snapshot_iter_7').write_bytes(b'half')
    (out / '.model.npz.x1y2.tmp').write_bytes(b'half')
    (out / 'logx1y2z3w4').mkdir()  # LogReport's temporary folder, left by SIGKILL
    (out / 'logx1y2z3w4' / 'log.json').write_text('[')
    # What tools added to the finished run: of a model that is gone once the run continues.
    (out / 'evaluation.json').write_text('{"spectrogram_mse": 0.001}')
    process = start_experiment('c9335bce', *TINY_RUN, '--epoch', '200', '--resume',
                               '--out', str(out))
    try:
        wait_for(out / 'snapshot_iter_6', process)
        for name in results.FINISHED_FILES:
            assert not (out / name).exists(), name  # no claim of a finish the run moved past
        assert not (out / 'tmpsnapshot_iter_7abcd').exists()
        assert not (out / '.model.npz.x1y2.tmp').exists()
        assert not (out / 'logx1y2z3w4').exists()
    finally:
        process.kill()
        process.wait()
    finished = run_experiment('c9335bce', *TINY_RUN, '--epoch', '3', '--resume', '--out', str(out))
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert read_json(out / 'summary.json')['epochs_completed'] == 3
    assert not (out / 'evaluation.json').exists()


def test_a_failed_model_write_leaves_no_partial_model(tmp_path, monkeypatch):
    train = load_experiment_module('c9335bce', 'train')
    args = train.parse_args(TINY_RUN + ['--epoch', '1', '--out', str(tmp_path / 'run')])
    corpus = dataset.load_corpus(dataset.DEMO_CORPUS, log=lambda message: None)
    with results.ResultsFolder(args, 'c9335bce') as out:
        trainer = train.make_trainer(args, corpus, cli.get_device(-1), out.run_id)
        trainer.run()

        def full_disk(file, *args, **kwargs):
            file.write(b'PK\x03\x04 the first bytes of a model')
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        with monkeypatch.context() as patch:
            patch.setattr(numpy, 'savez', full_disk)
            with pytest.raises(cli.UsageError, match='No space left'):
                out.finish(trainer, corpus)
        left = sorted(os.listdir(args.out))
        assert 'model.npz' not in left and 'summary.json' not in left
        assert not [name for name in left if name.endswith('.tmp')]
        out.finish(trainer, corpus)
    chainer.serializers.load_npz(os.path.join(args.out, 'model.npz'), train.Net())


# -- bad --out -------------------------------------------------------------------------------

def test_out_that_is_a_file_is_refused(tmp_path):
    path = tmp_path / 'a-file'
    path.write_text('x')
    one_line_error(run_experiment('c9335bce', *TINY_RUN, '--out', str(path)), str(path),
                   'not a folder')


def test_a_refused_dataset_leaves_no_empty_results_folder(tmp_path):
    out = tmp_path / 'never'
    result = run_experiment('c9335bce', *TINY_RUN, '--dataset', str(tmp_path / 'missing'),
                            '--out', str(out))
    one_line_error(result, 'missing')
    assert not out.exists()


@contextlib.contextmanager
def small_filesystem(path, size, read_only=False):
    """A real tmpfs of ``size`` at ``path`` (root only; the test is skipped elsewhere)."""
    path.mkdir()
    options = 'size={}'.format(size)
    mount = subprocess.run(['mount', '-t', 'tmpfs', '-o', options, 'tmpfs', str(path)],
                           capture_output=True, text=True)
    if mount.returncode != 0:
        pytest.skip('cannot mount a tmpfs here ({})'.format(mount.stderr.strip()))
    try:
        if read_only:
            subprocess.run(['mount', '-o', 'remount,ro', str(path)], check=True)
        yield path
    finally:
        subprocess.run(['umount', '-l', str(path)], check=False)


@pytest.mark.skipif(os.geteuid() != 0, reason='mounting a small filesystem needs root')
def test_a_read_only_results_folder_is_refused_at_once(tmp_path):
    with small_filesystem(tmp_path / 'ro', '1m', read_only=True) as folder:
        result = run_experiment('c9335bce', *TINY_RUN, '--out', str(folder / 'run'))
        one_line_error(result, str(folder / 'run'), 'Read-only file system')
        assert 'corpus' not in result.stdout


@pytest.mark.skipif(os.geteuid() != 0, reason='mounting a small filesystem needs root')
def test_a_full_disk_stops_with_one_line_and_keeps_the_last_snapshot(tmp_path):
    # A c9335bce snapshot is 27 MB: the first fits, the second (written before the first is
    # removed) does not.
    with small_filesystem(tmp_path / 'small', '45m') as folder:
        out = folder / 'run'
        result = run_experiment('c9335bce', *TINY_RUN, '--epoch', '3', '--out', str(out))
        one_line_error(result, 'No space left on device', 'snapshot_iter_2')
        assert [os.path.basename(p) for p in ext.snapshots(str(out))] == ['snapshot_iter_2']
        assert not list(out.glob('tmpsnapshot_*'))
        assert not (out / 'summary.json').exists()
        trainer_state = numpy.load(str(out / 'snapshot_iter_2'))
        assert int(trainer_state['updater/iteration']) == 2


# -- the epochs a log counts are the epochs that ran ------------------------------------------

def test_a_minibatch_larger_than_an_epoch_is_refused_in_one_line(tmp_path):
    """--batchsize 50 --excerpts-per-epoch 10 once ran one iteration that the log called epoch
    5, and summary.json said epochs_completed 5 against hyper-parameter epoch 1."""
    out = tmp_path / 'never'
    result = run_experiment('c9335bce', '--epoch', '1', '--batchsize', '50',
                            '--excerpts-per-epoch', '10', '--out', str(out))
    one_line_error(result, '--batchsize 50', 'the 10 excerpts of an epoch', 'at most 10')
    assert not out.exists()


def test_a_minibatch_of_a_whole_epoch_is_one_epoch_an_iteration(tmp_path):
    out = tmp_path / 'whole-epoch'
    result = run_experiment('c9335bce', *TINY_RUN, '--batchsize', '4', '--out', str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    log = read_json(out / 'log')
    assert [(entry['epoch'], entry['iteration']) for entry in log] == [(1, 1), (2, 2)]
    assert read_json(out / 'summary.json')['epochs_completed'] == 2


def test_a_run_past_its_epochs_is_refused_and_keeps_its_finish(c9335bce_run, tmp_path):
    """Resumed with a smaller --epoch, Chainer's stop trigger (a multiple of --epoch) let a
    finished 2-epoch run "finish" 2 epochs under hyper-parameter epoch 1, and a 3-epoch run
    train on to epoch 4 under --epoch 2."""
    out = finished_copy(c9335bce_run, tmp_path, 'finished')
    before = listing(out)
    result = run_experiment('c9335bce', *TINY_RUN, '--epoch', '1', '--resume', '--out', str(out))
    one_line_error(result, 'snapshot_iter_4', 'at epoch 2.00, past --epoch 1', '--epoch 2')
    assert listing(out) == before  # the refusal removed nothing of the finish


def test_a_run_continued_with_other_settings_is_refused_unless_forced_and_then_recorded(
        c9335bce_run, tmp_path):
    """--resume with another --lr or --batchsize once went through silently, and summary.json
    recorded only the new values: a record of a run that never was."""
    out = finished_copy(c9335bce_run, tmp_path, 'finished')
    before = listing(out)
    result = run_experiment('c9335bce', *TINY_RUN, '--epoch', '3', '--lr', '1e-4',
                            '--resume', '--out', str(out))
    one_line_error(result, 'snapshot_iter_4', 'trained with --lr 1e-05 (now 0.0001)', '--force')
    assert listing(out) == before  # refused before anything of the finish was removed

    # One flag of TRAINING_SETTINGS after another: each one is named.
    result = run_experiment('c9335bce', *TINY_RUN, '--epoch', '3', '--seed', '1',
                            '--lr-decay-factor', '0.5', '--resume', '--out', str(out))
    one_line_error(result, '--lr-decay-factor 0.1 (now 0.5), --seed 0 (now 1)')

    result = run_experiment('c9335bce', *TINY_RUN, '--epoch', '3', '--lr', '1e-4',
                            '--resume', '--force', '--out', str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'continuing the run with other settings' in result.stdout
    hyper = read_json(out / 'summary.json')['hyperparameters']
    assert hyper['lr'] == 1e-4
    assert hyper['changed_on_resume'] == [{'iteration': 4, 'lr': [1e-5, 1e-4]}]
    page = (out / 'index.html').read_text()
    assert 'settings changed on --resume' in page and 'at iteration 4: --lr 1e-05 to 0.0001' in page

    # The change stays in the run: continued again with its new settings, nothing is refused
    # and the record keeps what changed when.
    result = run_experiment('c9335bce', *TINY_RUN, '--epoch', '4', '--lr', '1e-4',
                            '--resume', '--out', str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    hyper = read_json(out / 'summary.json')['hyperparameters']
    assert hyper['changed_on_resume'] == [{'iteration': 4, 'lr': [1e-5, 1e-4]}]


def test_a_snapshot_from_before_settings_were_kept_resumes(c9335bce_run, tmp_path):
    out = tmp_path / 'older'
    out.mkdir()
    snapshot = ext.snapshots(str(c9335bce_run))[-1]
    content = {key: value for key, value in numpy.load(snapshot).items()
               if key not in ('extensions/run/settings', 'extensions/run/changes')}
    with open(str(out / os.path.basename(snapshot)), 'wb') as stream:
        numpy.savez(stream, **content)
    result = run_experiment('c9335bce', *TINY_RUN, '--epoch', '3', '--lr', '1e-4',
                            '--resume', '--out', str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'changed_on_resume' not in read_json(out / 'summary.json')['hyperparameters']


# -- snapshot states that no run writes --------------------------------------------------------

@pytest.fixture(scope='module')
def demo_corpus():
    return dataset.load_corpus(dataset.DEMO_CORPUS, log=lambda message: None)


MALFORMED_STATES = {
    # case: (entry, value, what the line names)
    'log an object': ('extensions/LogReport/_log', '{"a": 1}', 'extensions/LogReport/_log'),
    'log a number': ('extensions/LogReport/_log', '5', 'extensions/LogReport/_log'),
    'log of numbers': ('extensions/LogReport/_log', '[1, 2]', 'extensions/LogReport/_log'),
    'log epoch a string': ('extensions/LogReport/_log', '[{"epoch": "x", "iteration": 1}]',
                           '"epoch"'),
    'log nested too deep': ('extensions/LogReport/_log', '[' * 100000 + ']' * 100000,
                            'RecursionError'),
    'statistics nested too deep': ('extensions/LogReport/_summary/_names',
                                   '[' * 100000 + ']' * 100000, 'RecursionError'),
    'curves a list': ('extensions/PlotReport/_plot_loss.png', '[]', '_plot_loss.png'),
    'curves empty': ('extensions/PlotReport/_plot_loss.png', '{}', '_plot_loss.png'),
    'curve a number': ('extensions/PlotReport/_plot_loss.png',
                       '{"main/loss": 5, "validation/main/loss": []}', 'the curve of main/loss'),
    'curve of short points': ('extensions/PlotReport/_plot_loss.png',
                              '{"main/loss": [[1]], "validation/main/loss": []}',
                              'the curve of main/loss'),
    'iteration negative': ('updater/iteration', -4, 'updater/iteration is -4'),
    'position negative': ('updater/iterator:main/current_position', -5, 'current_position'),
    'epoch negative': ('updater/iterator:main/epoch', -1, 'updater/iterator:main/epoch'),
    'excerpts drawn negative': ('updater/iterator:main/dataset/drawn', -1, 'dataset/drawn'),
    'previous epoch NaN': ('updater/iterator:main/previous_epoch_detail', float('nan'),
                           'previous_epoch_detail is nan'),
    'elapsed time NaN': ('_snapshot_elapsed_time', float('nan'), 'elapsed_time is nan'),
    'stop trigger NaN': ('stop_trigger/previous_epoch_detail', float('nan'),
                         'stop_trigger/previous_epoch_detail'),
    'settings not JSON': ('extensions/run/settings', '{"lr": ', 'extensions/run/settings'),
    'settings a list': ('extensions/run/settings', '[1e-05]', 'extensions/run/settings'),
    'changes an object': ('extensions/run/changes', '{}', 'extensions/run/changes'),
}


@pytest.mark.parametrize('case', sorted(MALFORMED_STATES))
def test_a_snapshot_with_a_state_no_run_writes_is_refused_in_one_line(case, c9335bce_run,
                                                                      demo_corpus, tmp_path):
    """Each of these once loaded and then ended the run with a traceback (a log that is not a
    list, curves without their keys, a negative excerpt count), or trained a wrong record
    (negative epochs and positions)."""
    key, value, named = MALFORMED_STATES[case]
    snapshot = ext.snapshots(str(c9335bce_run))[-1]
    content = dict(numpy.load(snapshot))
    content[key] = numpy.array(value)
    out = tmp_path / 'out'
    out.mkdir()
    with open(str(out / os.path.basename(snapshot)), 'wb') as stream:
        numpy.savez(stream, **content)
    train = load_experiment_module('c9335bce', 'train')
    args = train.parse_args(TINY_RUN + ['--epoch', '3', '--resume', '--out', str(out)])
    with pytest.raises(cli.UsageError) as error:
        with results.ResultsFolder(args, 'c9335bce') as folder:
            trainer = train.make_trainer(args, demo_corpus, cli.get_device(-1), folder.run_id)
            folder.resume(trainer)
            folder.run(trainer, demo_corpus)
    message = str(error.value)
    assert '\n' not in message and message.startswith(str(out / os.path.basename(snapshot)))
    assert named in message, message


# -- nothing outside --out is written or followed ----------------------------------------------

@pytest.mark.parametrize('kind', ['symbolic', 'hard'])
def test_a_lock_file_that_is_a_link_is_refused_and_its_target_untouched(kind, c9335bce_run,
                                                                        tmp_path):
    """A .lock that was a link (a folder unpacked from elsewhere) had its target truncated and
    overwritten with the pid, even when the run was then refused."""
    out = finished_copy(c9335bce_run, tmp_path, 'unpacked')
    victim = tmp_path / 'victim'
    victim.write_text('precious\n')
    lock = out / results.LOCK
    if lock.exists():
        lock.unlink()
    (os.symlink if kind == 'symbolic' else os.link)(str(victim), str(lock))
    result = run_experiment('c9335bce', *TINY_RUN, '--epoch', '3', '--resume', '--out', str(out))
    one_line_error(result, str(lock), 'symbolic link' if kind == 'symbolic' else 'hard link',
                   'remove it')
    assert victim.read_text() == 'precious\n'


@pytest.mark.parametrize('link', ['loss.png', 'utterance', 'utterance/output.wav', 'log'])
def test_a_results_folder_holding_links_is_refused_and_nothing_written_through_them(
        link, c9335bce_run, tmp_path):
    """--resume into a folder whose loss.png or utterance/ was a link wrote through the link,
    outside --out."""
    out = finished_copy(c9335bce_run, tmp_path, 'linked')
    outside = tmp_path / 'outside'
    outside.mkdir()
    target = outside / os.path.basename(link)
    original = out / link
    if original.is_dir():
        shutil.move(str(original), str(target))
    else:
        target.write_bytes(original.read_bytes())
        original.unlink()
    os.symlink(str(target), str(original))
    before = {path: path.read_bytes() for path in outside.rglob('*') if path.is_file()}
    result = run_experiment('c9335bce', *TINY_RUN, '--epoch', '3', '--resume', '--out', str(out))
    one_line_error(result, str(out), 'symbolic links', '{} -> {}'.format(link, target))
    assert {path: path.read_bytes() for path in outside.rglob('*') if path.is_file()} == before
    assert (out / 'summary.json').exists()  # refused before anything was removed


# -- summary.json read with bounds -------------------------------------------------------------

@pytest.mark.parametrize('case', ['fifo', 'deeply nested', 'a list'])
def test_a_summary_that_cannot_be_read_is_refused_in_one_line_on_resume(case, c9335bce_run,
                                                                        tmp_path):
    """A FIFO there once hung train.py --resume forever; deep nesting was a RecursionError."""
    out = finished_copy(c9335bce_run, tmp_path, 'odd-summary')
    summary = out / 'summary.json'
    summary.unlink()
    if case == 'fifo':
        os.mkfifo(str(summary))
    else:
        summary.write_text('[' * 100000 + ']' * 100000 if case == 'deeply nested' else '[1]')
    result = run_experiment('c9335bce', *TINY_RUN, '--epoch', '3', '--resume', '--out',
                            str(out), timeout=120)
    one_line_error(result, str(summary), '--force', {
        'fifo': 'not a regular file', 'deeply nested': 'unreadable summary.json',
        'a list': 'not a JSON object'}[case])
    # With --force the run there is replaced: the summary goes with it.
    forced = run_experiment('c9335bce', *TINY_RUN, '--epoch', '3', '--resume', '--force',
                            '--out', str(out), timeout=300)
    assert forced.returncode == 0, forced.stderr[-3000:]
    assert read_json(summary)['epochs_completed'] == 3


# -- a new run leaves nothing of the old one ---------------------------------------------------

def test_a_new_run_over_a_finished_one_leaves_none_of_its_files(c9335bce_run, tmp_path):
    """evaluation.json (and every file a tool adds) survived --force, so the new run's page and
    common.compare showed the old model's metrics as its own."""
    out = finished_copy(c9335bce_run, tmp_path, 'replaced')
    for name in runs.DERIVED_FILES:
        (out / name).write_text('{"spectrogram_mse": 0.001}')
    (out / 'tensorboard').mkdir()
    (out / 'tensorboard' / 'events.out.tfevents.1').write_bytes(b'old')
    (out / 'notes.txt').write_text('mine')  # not a file of a run: stays
    result = run_experiment('c9335bce', *TINY_RUN, '--epoch', '1', '--force', '--out', str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    left = {path.relative_to(out).as_posix() for path in out.rglob('*')}
    for name in runs.DERIVED_FILES + ('tensorboard',):
        assert name not in left, name
    assert 'notes.txt' in left
    assert [os.path.basename(path) for path in ext.snapshots(str(out))] == ['snapshot_iter_2']
    assert read_json(out / 'summary.json')['run'] != read_json(c9335bce_run / 'summary.json')['run']


def test_what_a_new_run_removes_of_the_old_is_what_a_run_writes(c9335bce_run):
    """results.PREVIEW_FILES (removed when a run is replaced) are the files a run's previews
    write, in each preview folder."""
    for sub, _ in report.PREVIEWS:
        written = {path.name for path in (c9335bce_run / sub).iterdir()
                   if path.suffix in ('.png', '.wav')} - {results.LOSS_PLOT}
        assert written == set(results.PREVIEW_FILES), sub


# -- SIGTERM outside the training loop ends like Ctrl-C: a line and clean-up --------------------

def run_patched(patch, experiment_id, *flags, env=None):
    """``<experiment>/train.py FLAGS`` as a user runs it, after the Python source ``patch`` ran
    in its process (to send a real signal at a chosen moment)."""
    script = os.path.join(REPOSITORY, experiment_id, 'train.py')
    code = '\n'.join([patch, 'import runpy, sys',
                      'sys.argv = [{!r}] + sys.argv[1:]'.format(script),
                      'sys.path.insert(0, {!r})'.format(os.path.dirname(script)),
                      'runpy.run_path({!r}, run_name="__main__")'.format(script)])
    return subprocess.run([sys.executable, '-c', code] + list(flags), capture_output=True,
                          text=True, timeout=600, cwd=REPOSITORY, env=env)


SIGTERM_WHILE_DECODING = '''
import os, signal
from common import audio
decoded = []
real_load = audio.load
def load(path, *args, **kwargs):
    decoded.append(path)
    if len(decoded) == 3:
        os.kill(os.getpid(), signal.SIGTERM)
    return real_load(path, *args, **kwargs)
audio.load = load
'''

SIGTERM_WHILE_WRITING_THE_SUMMARY = '''
import contextlib, os, signal
from common import files
real_atomic_write = files.atomic_write
@contextlib.contextmanager
def atomic_write(path, *args, **kwargs):
    with real_atomic_write(path, *args, **kwargs) as stream:
        yield stream
        if os.path.basename(os.fspath(path)) == 'summary.json':  # written, not yet renamed
            os.kill(os.getpid(), signal.SIGTERM)
files.atomic_write = atomic_write
'''


def test_sigterm_while_the_corpus_loads_is_a_line_and_leaves_no_folder(tmp_path):
    """It once killed the process silently (exit -15), leaving a folder that held only .lock."""
    out = tmp_path / 'never'
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / 'cache'))  # decoded afresh
    result = run_patched(SIGTERM_WHILE_DECODING, 'c9335bce', *TINY_RUN, '--out', str(out),
                         env=env)
    assert result.returncode == 128 + signal.SIGTERM, (result.returncode, result.stderr[-3000:])
    lines = result.stderr.strip().splitlines()
    assert lines == ['train.py: interrupted (SIGTERM)'], result.stderr[-3000:]
    assert not out.exists()
    assert not [path for path in (tmp_path / 'cache').rglob('*') if path.name.endswith('.tmp')]


def test_sigterm_while_the_finished_run_is_written_is_a_line_and_resume_writes_it(tmp_path):
    """It once killed the process silently with the summary's temporary file left behind."""
    out = tmp_path / 'run'
    result = run_patched(SIGTERM_WHILE_WRITING_THE_SUMMARY, 'c9335bce', *TINY_RUN,
                         '--out', str(out))
    assert result.returncode == 128 + signal.SIGTERM, (result.returncode, result.stderr[-3000:])
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('train.py: interrupted (SIGTERM) while the '
                                                   'finished run was written'), lines
    assert '--resume {}'.format(out / 'snapshot_iter_4') in lines[0]
    assert not [path.name for path in out.rglob('*') if path.name.endswith('.tmp')]
    assert not (out / 'summary.json').exists()
    resumed = run_experiment('c9335bce', *TINY_RUN, '--resume', '--out', str(out))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert read_json(out / 'summary.json')['epochs_completed'] == 2


def test_a_seed_no_run_takes_is_refused_in_one_line(tmp_path):
    for seed in ('-1', str(2 ** 32)):
        result = run_experiment('c9335bce', *TINY_RUN, '--seed', seed,
                                '--out', str(tmp_path / 'never'))
        one_line_error(result, '--seed {} is out of range'.format(seed), '0 to 4294967295')
    assert not (tmp_path / 'never').exists()
