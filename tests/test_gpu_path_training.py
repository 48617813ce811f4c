"""Training on the GPU path, tested on the CPU (common/gpu_path.py's switch) and under -m gpu:

* the NaN stop reads the loss to the host only at the end of an epoch, every ``interval``
  iterations and before an interrupt's snapshot, and still never lets a snapshot of a broken model
  become the newest;
* --tf32 and --gpu-memory-limit: refused without a GPU, recorded in summary.json;
* PeakGPUMemory keeps the peak in use and the pool's size, and resumes from older snapshots.
"""
import os
import signal

import numpy
import pytest

import common  # noqa: F401
import chainer
from chainer import training

from common import env
from common import extensions as ext
from common import gpu_path
from conftest import TINY_RUN, read_json, run_experiment

GPU = [pytest.mark.gpu,
       pytest.mark.skipif(not env.cuda_report(0)['cuda_usable'],
                          reason='no usable GPU: {}'.format(env.cuda_report(0)['cuda_problem']))]
DEVICES = ['@numpy', pytest.param('@cupy:0', marks=GPU)]


class Broken(chainer.Chain):
    """loss = sum(w * x), NaN at the ``nan_at``-th call only (SGD with lr 0 keeps w)."""

    def __init__(self, nan_at):
        super().__init__()
        self.nan_at, self.calls = nan_at, 0
        with self.init_scope():
            self.w = chainer.Parameter(numpy.ones(1, dtype=numpy.float32))

    def forward(self, x):
        self.calls += 1
        if self.calls == self.nan_at:
            x = x * numpy.float32('nan')
        loss = chainer.functions.sum(self.w * x)
        chainer.report({'loss': loss}, self)
        return loss


class SignalAt(training.Extension):
    """Sends this process ``signum`` at iteration ``iteration`` (a real signal, as a user's)."""
    trigger = (1, 'iteration')
    priority = training.PRIORITY_WRITER + 1  # before the interrupt extension reads its flag

    def __init__(self, iteration, signum=signal.SIGINT):
        self.iteration, self.signum = iteration, signum

    def __call__(self, trainer):
        if trainer.updater.iteration == self.iteration:
            os.kill(os.getpid(), self.signum)


def nan_trainer(out, device, nan_at, epoch_length=6, epochs=3, interval=100, interrupt_at=None):
    """A trainer whose loss is NaN at iteration ``nan_at`` only, snapshots at every epoch's end
    (as train.py's), and the NaN stop and the interrupt snapshot of train.py."""
    iterator = chainer.iterators.SerialIterator([numpy.ones(1, numpy.float32)] * epoch_length, 1,
                                                shuffle=False)
    model = Broken(nan_at)
    model.to_device(device)
    optimizer = chainer.optimizers.SGD(lr=0)
    optimizer.setup(model)
    updater = training.updaters.StandardUpdater(iterator, optimizer, device=device)
    trainer = training.Trainer(updater, (epochs, 'epoch'), out=str(out))
    stop = ext.StopOnNonFinite(interval=interval)
    trainer.extend(stop)
    snapshot = ext.snapshot()
    trainer.extend(ext.SnapshotOnInterrupt(snapshot), name='snapshot_on_interrupt')
    trainer.extend(snapshot, trigger=ext.every_epochs(1, epochs))
    if interrupt_at:
        trainer.extend(SignalAt(interrupt_at))
    return trainer, stop


def run_until_stopped(trainer):
    with pytest.raises(ext.NonFiniteLoss) as stopped:
        trainer.run(show_loop_exception_msg=False)
    return str(stopped.value)


def snapshot_names(out):
    return [os.path.basename(path) for path in ext.snapshots(str(out))]


@pytest.mark.parametrize('device_name', DEVICES)
def test_on_the_gpu_path_the_nan_stop_reads_the_loss_once_an_epoch(tmp_path, device_name):
    device = chainer.get_device(device_name)
    with gpu_path.on_numpy():
        # NaN at iteration 9 of 18, in epoch 2 (iterations 7-12): read at iteration 12, before
        # the epoch's snapshot; epoch 1's snapshot (iteration 6) stays the newest.
        trainer, stop = nan_trainer(tmp_path, device, nan_at=9)
        message = run_until_stopped(trainer)
    assert 'loss became nan at epoch 1.5, iteration 9 (read at iteration 12)' in message
    assert snapshot_names(tmp_path) == ['snapshot_iter_6']
    assert stop.host_reads == 2  # at iterations 6 and 12, not 12 times


def test_on_the_cpu_path_the_nan_stop_reads_every_iteration(tmp_path):
    trainer, stop = nan_trainer(tmp_path, chainer.get_device('@numpy'), nan_at=9)
    message = run_until_stopped(trainer)
    assert message == 'loss became nan at epoch 1.5, iteration 9'
    assert snapshot_names(tmp_path) == ['snapshot_iter_6']
    assert stop.host_reads == 9


@pytest.mark.parametrize('device_name', DEVICES)
def test_on_the_gpu_path_the_nan_stop_reads_every_interval(tmp_path, device_name):
    with gpu_path.on_numpy():
        trainer, stop = nan_trainer(tmp_path, chainer.get_device(device_name), nan_at=2,
                                    epoch_length=20, interval=4)
        message = run_until_stopped(trainer)
    assert 'iteration 2 (read at iteration 4)' in message
    assert stop.host_reads == 1 and snapshot_names(tmp_path) == []


@pytest.mark.parametrize('device_name', DEVICES)
def test_on_the_gpu_path_an_interrupt_after_a_nan_writes_no_snapshot(tmp_path, device_name):
    with gpu_path.on_numpy():
        # NaN at iteration 8, Ctrl-C at iteration 10: the interrupt's snapshot would be the newest
        # (after epoch 1's, iteration 6); the NaN stop reads the loss first and stops.
        trainer, stop = nan_trainer(tmp_path, chainer.get_device(device_name), nan_at=8,
                                    interrupt_at=10)
        message = run_until_stopped(trainer)
    assert 'iteration 8 (read at iteration 10)' in message
    assert snapshot_names(tmp_path) == ['snapshot_iter_6']


@pytest.mark.parametrize('device_name', DEVICES)
def test_on_the_gpu_path_an_interrupt_of_a_good_run_still_snapshots(tmp_path, device_name):
    with gpu_path.on_numpy():
        trainer, stop = nan_trainer(tmp_path, chainer.get_device(device_name), nan_at=17,
                                    interrupt_at=10)
        with pytest.raises(ext.Interrupted):
            trainer.run(show_loop_exception_msg=False)
    assert snapshot_names(tmp_path) == ['snapshot_iter_10']  # the newest only, as in train.py
    assert stop.host_reads == 2  # epoch 1's end, and the interrupt


def test_tf32_and_the_memory_cap_need_a_gpu(tmp_path):
    for flags, expected in ((['--tf32'], "--tf32 is a mode of the GPU's matrix products"),
                            (['--gpu-memory-limit', '2600'], '--gpu-memory-limit caps the GPU'),
                            (['--gpu', '0', '--gpu-memory-limit', '0'],
                             '--gpu-memory-limit must be a positive number'),
                            (['--gpu', '0', '--gpu-memory-limit', 'inf'],
                             '--gpu-memory-limit must be a positive number')):
        result = run_experiment('c9335bce', *TINY_RUN, '--out', str(tmp_path / 'out'), *flags)
        assert result.returncode == 2, flags
        assert expected in result.stderr.strip().splitlines()[-1]
        assert 'Traceback' not in result.stderr and not (tmp_path / 'out').exists()


def test_a_cpu_run_records_tf32_off_and_no_gpu_memory(bc7db4a2_run):
    summary = read_json(bc7db4a2_run / 'summary.json')
    assert summary['tf32'] is False and summary['environment']['cupy_tf32'] == '0'
    assert summary['peak_gpu_memory_mib'] is None and summary['gpu_memory_pool_mib'] is None
    assert summary['gpu_memory_limit_mib'] is None


def test_the_gpu_memory_figures_survive_a_snapshot_and_older_snapshots_load(tmp_path):
    measured = ext.PeakGPUMemory()
    measured.peak_bytes, measured.pool_bytes = 2 * 2 ** 30, 3 * 2 ** 30
    chainer.serializers.save_npz(str(tmp_path / 'memory.npz'), measured)
    resumed = ext.PeakGPUMemory()
    chainer.serializers.load_npz(str(tmp_path / 'memory.npz'), resumed)
    assert (resumed.peak_bytes, resumed.pool_bytes) == (2 * 2 ** 30, 3 * 2 ** 30)
    numpy.savez(str(tmp_path / 'older.npz'), peak_bytes=numpy.array(5))  # before pool_bytes
    older = ext.PeakGPUMemory()
    chainer.serializers.load_npz(str(tmp_path / 'older.npz'), older)
    assert (older.peak_bytes, older.pool_bytes) == (5, 0)
