"""Run under mpiexec by tests/test_distributed.py: one forward and backward of an experiment's
net on this worker's share of a fixed global minibatch, as data-parallel training does it
(MultiNodeBatchNormalization, gradients averaged by ChainerMN); rank 0 saves the loss of the
global minibatch, every parameter gradient and the BatchNormalization running statistics.

    mpiexec -n N python tests/mpi/gradients.py EXPERIMENT GLOBAL_BATCH OUT_PREFIX DTYPE [DTYPE]

writes OUT_PREFIX-DTYPE.npz for each DTYPE (float32, float64).
"""
import os
import sys

import numpy

import common  # noqa: F401
import chainer
import chainermn

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from conftest import global_minibatch, load_experiment_module  # noqa: E402
from common import distributed, objectives  # noqa: E402


def main(experiment_id, size, prefix, *dtypes):
    comm = chainermn.create_communicator('naive')
    share = size // comm.size
    for dtype in map(numpy.dtype, dtypes):
        x = global_minibatch(size, dtype)[comm.rank * share:(comm.rank + 1) * share]
        with chainer.using_config('dtype', dtype):
            numpy.random.seed(0)
            net = load_experiment_module(experiment_id).Net()
            model = objectives.Reconstruction(distributed.multi_node_batch_normalization(net, comm))
            loss = model(x)
        model.cleargrads()
        loss.backward()
        comm.multi_node_mean_grad(model)
        loss = comm.mpi_comm.allreduce(float(loss.array)) / comm.size
        if comm.rank == 0:
            arrays = {'loss': numpy.float64(loss)}
            arrays.update(('grad' + name, param.grad) for name, param in model.namedparams())
            arrays.update(running_statistics(model))
            numpy.savez('{}-{}.npz'.format(prefix, dtype.name), **arrays)


def running_statistics(model):
    for name, link in model.namedlinks():
        for statistic in ('avg_mean', 'avg_var'):
            if statistic in getattr(link, '_persistent', ()):
                yield 'state{}/{}'.format(name, statistic), getattr(link, statistic)


if __name__ == '__main__':
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3], *sys.argv[4:])
