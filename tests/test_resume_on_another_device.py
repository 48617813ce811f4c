"""A snapshot resumes on another device: what the trainer of ``--gpu N`` adds (the PeakGPUMemory
extension) must not stop it from loading a snapshot written on the CPU.

The arrays themselves cross devices in Chainer (load_npz copies into NumPy or CuPy arrays, and the
optimizer moves its state to the parameter's device); tests/test_gpu.py resumes real runs both
ways on a GPU.  This part runs anywhere: the extension's state is read without a GPU.
"""
import numpy
import pytest

import common  # noqa: F401
import chainer
import chainer.links as L
from chainer import training

from common import extensions as ext


def tiny_trainer(out, follow_gpu_memory):
    numpy.random.seed(0)
    model = L.Classifier(L.Linear(3, 2))
    optimizer = chainer.optimizers.RMSprop(lr=1e-3)
    optimizer.setup(model)
    data = chainer.datasets.TupleDataset(numpy.ones((4, 3), numpy.float32),
                                         numpy.zeros(4, numpy.int32))
    updater = training.updaters.StandardUpdater(chainer.iterators.SerialIterator(data, 2),
                                                optimizer)
    trainer = training.Trainer(updater, (1, 'epoch'), out=str(out))
    if follow_gpu_memory:  # as train.py does on a GPU
        trainer.extend(ext.PeakGPUMemory(), name='peak_gpu_memory')
    return trainer


# The extension's trigger has no state in a CPU snapshot; Chainer says so, and it is harmless for
# a trigger called at every iteration, as this one is.
@pytest.mark.filterwarnings('ignore:The previous value of:UserWarning')
def test_a_cpu_snapshot_loads_into_the_trainer_of_a_gpu_run(tmp_path):
    cpu = tiny_trainer(tmp_path, follow_gpu_memory=False)
    cpu.run()
    chainer.serializers.save_npz(str(tmp_path / 'snapshot'), cpu)
    gpu = tiny_trainer(tmp_path, follow_gpu_memory=True)
    chainer.serializers.load_npz(str(tmp_path / 'snapshot'), gpu)
    assert gpu.updater.iteration == cpu.updater.iteration == 2
    assert gpu.get_extension('peak_gpu_memory').peak_bytes == 0  # nothing measured yet


def test_the_peak_of_a_gpu_snapshot_survives_a_resume(tmp_path):
    measured = ext.PeakGPUMemory()
    measured.peak_bytes = 3 * 2 ** 30
    chainer.serializers.save_npz(str(tmp_path / 'peak.npz'), measured)
    resumed = ext.PeakGPUMemory()
    chainer.serializers.load_npz(str(tmp_path / 'peak.npz'), resumed)
    assert resumed.peak_bytes == 3 * 2 ** 30
