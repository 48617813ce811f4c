"""bc7db4a2/train.py as a user runs it: the results folder, refusals, resume, Ctrl-C, NaN."""
import json
import os

import numpy
import pytest
import soundfile

import common  # noqa: F401
import chainer
import matplotlib.image

from conftest import TINY_RUN, read_json, run_experiment, start_experiment, wait_for, \
    without_times
from common import extensions as ext

PREVIEW_FILES = ['spectrogram_input.png', 'spectrogram_output.png', 'input.wav', 'output.wav',
                 'input_griffinlim.wav']
SUMMARY_KEYS = ['experiment', 'net', 'hyperparameters', 'parameters', 'latent_shape', 'dataset',
                'device', 'gpu', 'peak_gpu_memory_mib', 'environment', 'training_hours',
                'final_training_mse', 'final_validation_mse']


def test_a_run_writes_every_result_file_with_real_content(bc7db4a2_run):
    out = bc7db4a2_run
    for folder in (out, out / 'utterance'):
        for name in PREVIEW_FILES:
            path = folder / name
            if name.endswith('.png'):
                image = matplotlib.image.imread(str(path))
                assert image.shape[0] > 100 and image.shape[1] > 100, path
                assert image.std() > 0.01, path  # not a blank picture
            else:
                wave, rate = soundfile.read(str(path))
                assert rate == 16000 and wave.ndim == 1, path
                assert numpy.sqrt(numpy.mean(wave ** 2)) > 1e-3, path  # not silent
                # Never clipped: an untrained model's output is lowered as a whole, so at most
                # a handful of samples sit near full scale (was 95 % at +-32767).
                assert numpy.mean(numpy.abs(wave) > 0.98) < 0.001, path
    excerpt, _ = soundfile.read(str(out / 'input.wav'))
    assert len(excerpt) == 16896
    assert matplotlib.image.imread(str(out / 'loss.png')).std() > 0.01

    with open(out / 'log') as f:
        log = json.load(f)
    assert [entry['epoch'] for entry in log] == [1, 2]
    assert all(numpy.isfinite(entry['validation/main/loss']) for entry in log)
    assert [entry['lr'] for entry in log] == [1e-5, 1e-5]  # the schedule is in the log

    with open(out / 'summary.json') as f:
        summary = json.load(f)
    assert set(SUMMARY_KEYS) <= set(summary)
    assert summary['experiment'] == 'bc7db4a2' and summary['net'] == 'bc7db4a2/net.py:Net'
    assert summary['parameters'] == 102054657
    assert summary['latent_shape'] == [4096, 16, 1]
    assert summary['hyperparameters']['batchsize'] == 2
    assert summary['hyperparameters']['lr'] == 1e-5
    assert summary['dataset']['files'] == 141 and summary['dataset']['hours'] > 0.1
    assert summary['final_validation_mse'] == log[-1]['validation/main/loss']
    assert summary['environment']['chainer'] == '7.8.1'

    net = experiment_net()
    chainer.serializers.load_npz(str(out / 'model.npz'), net)  # the stock links load it
    assert [p.name for p in out.glob('snapshot_iter_*')] != []


def experiment_net():
    from conftest import load_experiment_module
    return load_experiment_module('bc7db4a2').Net()


def test_a_folder_holding_a_run_is_refused_without_resume_or_force(bc7db4a2_run):
    before = sorted(os.listdir(bc7db4a2_run))
    result = run_experiment('bc7db4a2', *TINY_RUN, '--out', str(bc7db4a2_run))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and 'already holds a run' in lines[0]
    assert '--resume' in lines[0] and '--force' in lines[0]
    assert sorted(os.listdir(bc7db4a2_run)) == before


def test_bad_dataset_is_one_line_error(tmp_path):
    result = run_experiment('bc7db4a2', *TINY_RUN, '--dataset', str(tmp_path / 'missing'),
                            '--out', str(tmp_path / 'out'))
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and 'missing' in result.stderr
    assert 'Traceback' not in result.stderr


def _start(out, *flags):
    return start_experiment('bc7db4a2', *TINY_RUN, '--out', str(out), *flags)


def test_a_run_killed_after_its_first_snapshot_resumes_to_the_same_log(tmp_path, bc7db4a2_run):
    out = tmp_path / 'run'
    process = _start(out)
    wait_for(out / 'snapshot_iter_2', process)  # written at the end of epoch 1 (2 iterations)
    process.kill()
    process.wait()
    result = run_experiment('bc7db4a2', *TINY_RUN, '--out', str(out), '--resume')
    assert result.returncode == 0, result.stderr[-2000:]
    assert 'resumed from' in result.stdout
    assert without_times(read_json(out / 'log')) == without_times(read_json(bc7db4a2_run / 'log'))
    summary = read_json(out / 'summary.json')
    assert summary['final_validation_mse'] == \
        read_json(bc7db4a2_run / 'summary.json')['final_validation_mse']


def test_nan_loss_stops_training_and_keeps_the_last_good_snapshot(tmp_path):
    trainer_out = tmp_path / 'nan'

    class Broken(chainer.Chain):
        def __init__(self):
            super().__init__()
            with self.init_scope():
                self.w = chainer.Parameter(numpy.ones(1, dtype=numpy.float32))

        def forward(self, x):
            loss = chainer.functions.sum(self.w * x)
            chainer.report({'loss': loss}, self)
            return loss

    # NaN at iteration 8, exactly when a snapshot is due: the check runs first, so the
    # newest snapshot stays the good one of iteration 4.
    data = [numpy.ones(1, numpy.float32)] * 7 + [numpy.full(1, numpy.nan, numpy.float32)]
    iterator = chainer.iterators.SerialIterator(data, 1, shuffle=False)
    model = Broken()
    optimizer = chainer.optimizers.SGD(lr=0)
    optimizer.setup(model)
    updater = chainer.training.updaters.StandardUpdater(iterator, optimizer)
    trainer = chainer.training.Trainer(updater, (3, 'epoch'), out=str(trainer_out))
    trainer.extend(ext.StopOnNonFinite())
    trainer.extend(chainer.training.extensions.snapshot(filename=ext.SNAPSHOT),
                   trigger=(4, 'iteration'))
    with pytest.raises(ext.NonFiniteLoss, match='nan'):
        trainer.run(show_loop_exception_msg=False)
    assert [os.path.basename(p) for p in ext.snapshots(str(trainer_out))] == \
        ['snapshot_iter_4']
