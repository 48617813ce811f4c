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

import numpy
import pytest

import chainer

from conftest import (TINY_RUN, load_experiment_module, read_json, run_experiment,
                      start_experiment, wait_for, without_times)
from common import cli, dataset, preview, results
from common import extensions as ext


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
    process = start_experiment('c9335bce', *TINY_RUN, '--epoch', '200', '--resume',
                               '--out', str(out))
    try:
        wait_for(out / 'snapshot_iter_6', process)
        for name in results.FINISHED_FILES:
            assert not (out / name).exists(), name  # no claim of a finish the run moved past
        assert not (out / 'tmpsnapshot_iter_7abcd').exists()
        assert not (out / '.model.npz.x1y2.tmp').exists()
    finally:
        process.kill()
        process.wait()
    finished = run_experiment('c9335bce', *TINY_RUN, '--epoch', '3', '--resume', '--out', str(out))
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert read_json(out / 'summary.json')['epochs_completed'] == 3


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
