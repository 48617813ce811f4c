"""A rehearsal on the CPU of ``bash bench/gpu_machine.sh records``, the device script that trains
both records at once on one GPU across commands of at most 600 s: a tiny schedule (minibatch 2),
the GPU code path on NumPy (GPU_PATH_ON_NUMPY=1), GPU=-1.

1. A first command trains both runs to their end (one epoch) in the folder that survives between
   commands, and brings back one archive of at most 16 MiB without snapshots or models.
2. A second command asks for many more epochs: both runs resume from that folder, and when the
   time budget is spent they are stopped with SIGTERM, writing a snapshot (the next command
   would resume it); no snapshot is ever lost.
"""
import os
import re
import subprocess
import sys
import tarfile

import pytest

from conftest import REPOSITORY, read_json

# The device script across commands: slow, so left out of the quick check
# (README.md: pytest -m "not slow").
pytestmark = pytest.mark.slow

TINY = '--batchsize 2 --excerpts-per-epoch 4 --validation-excerpts 2 --preview-interval 1000'
MAX_ARCHIVE_BYTES = 16 * 2 ** 20


def device_command(tmp_path, train_flags, budget):
    env = dict(os.environ, RECORDS=str(tmp_path / 'records'), OUT=str(tmp_path / 'out'),
               GPU='-1', TIME_BUDGET=str(budget), TRAIN_FLAGS=train_flags,
               PYTHON=sys.executable, GPU_PATH_ON_NUMPY='1', OMP_NUM_THREADS='1')
    result = subprocess.run(['bash', 'bench/gpu_machine.sh', 'records'], capture_output=True,
                            text=True, cwd=REPOSITORY, env=env, timeout=budget + 400)
    archive = tmp_path / 'out' / 'records.tar.gz'
    assert archive.stat().st_size <= MAX_ARCHIVE_BYTES
    with tarfile.open(archive) as tar:
        names = [name[2:] if name.startswith('./') else name for name in tar.getnames()]
    return result, names


def newest_snapshot(folder):
    found = [int(m.group(1)) for m in (re.fullmatch(r'snapshot_iter_(\d+)', name)
                                       for name in os.listdir(folder)) if m]
    return max(found, default=0)


def test_the_device_script_trains_both_records_across_commands(tmp_path):
    records = tmp_path / 'records'
    result, names = device_command(tmp_path, '--epoch 1 --snapshot-interval 1 ' + TINY, 600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    status = (records / 'status.txt').read_text()
    for experiment in ('bc7db4a2', 'c9335bce'):
        assert '{}: finished; newest snapshot: snapshot_iter_2'.format(experiment) in status
        summary = read_json(records / experiment / 'summary.json')
        assert summary['epochs_completed'] == 1 and summary['device'] == '@numpy'
        for name in ('summary.json', 'log', 'loss.png', 'index.html', 'output.wav'):
            assert '{}/{}'.format(experiment, name) in names
        assert experiment + '.out' in names
    assert 'status.txt' in names
    assert not [name for name in names if 'snapshot' in name or name.endswith('model.npz')]

    # The second command: many more epochs than its budget allows.
    result, names = device_command(tmp_path, '--epoch 100000 --snapshot-interval 100000 ' + TINY,
                                   60)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert 'SIGTERM to the runs' in result.stdout
    status = (records / 'status.txt').read_text()
    for experiment in ('bc7db4a2', 'c9335bce'):
        headers = [line for line in (records / (experiment + '.out')).read_text().splitlines()
                   if line.startswith('=== ')]
        assert len(headers) == 2 and '--resume' in headers[-1]
        assert re.search(r'{}: stopped at the budget'.format(experiment), status), status
        assert newest_snapshot(records / experiment) >= 2  # nothing lost
    # c9335bce (3.3 M parameters) starts in seconds: it resumed, trained on and wrote a snapshot.
    output = (records / 'c9335bce.out').read_text()
    assert 'resumed from' in output and 'interrupted (SIGTERM)' in output.splitlines()[-1]
    assert 'c9335bce: stopped at the budget, snapshot written' in status
    assert newest_snapshot(records / 'c9335bce') > 2
    assert not (records / 'c9335bce' / 'summary.json').exists()  # unfinished: no summary
    assert len(read_json(records / 'c9335bce' / 'log')) > 1
