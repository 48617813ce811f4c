"""Data-parallel training with ChainerMN (``chainermn``, shipped inside Chainer 7.8.1).

An experiment's ``train.py`` runs as one MPI process per worker when given ``--communicator``::

    mpiexec -n 2 python bc7db4a2/train.py --communicator naive ...          # CPU
    mpiexec -n 4 python bc7db4a2/train.py --gpu 0 --communicator ...        # 4 GPUs, pure_nccl

Everything that crosses processes is ChainerMN's: the communicator, the multi-node optimizer
(gradients all-reduced), MultiNodeBatchNormalization (statistics of the global minibatch), the
multi-node evaluator, ``scatter_dataset`` and the observation aggregator.  This module only
chooses and checks the communicator and answers the questions ``train.py`` asks of it; without
``--communicator`` nothing here is used and every helper behaves as for one process.
"""
import warnings

import common  # noqa: F401
import chainer

from common.cli import UsageError

#: ChainerMN's communicators, and whether each runs on the CPU (create_communicator's table).
COMMUNICATORS = {'naive': True, 'flat': False, 'non_cuda_aware': False, 'pure_nccl': False}
#: What ``--communicator`` without a name means.
DEFAULT_GPU, DEFAULT_CPU = 'pure_nccl', 'naive'
_ACTIVE = None
_RANK = 0


def communicator_name(args):
    """The communicator that ``--communicator`` (and ``--gpu``) ask for; None without one."""
    name = args.communicator
    if name is None:
        return None
    if name == 'auto':
        return DEFAULT_GPU if args.gpu >= 0 else DEFAULT_CPU
    if name not in COMMUNICATORS:
        raise UsageError('unknown communicator "{}": choose one of {}'.format(
            name, ', '.join(sorted(COMMUNICATORS))), everywhere=True)
    if args.gpu < 0 and not COMMUNICATORS[name]:
        raise UsageError('the {} communicator needs GPUs (--gpu 0); on CPUs use naive'
                         .format(name), everywhere=True)
    return name


def create_communicator(args):
    """The ChainerMN communicator of ``--communicator``, or None (one process, no MPI).

    Checks the batch size: ``--batchsize`` is the global minibatch, which the workers share,
    and ``--excerpts-per-epoch`` the global epoch, which they share too.
    """
    if args.communicator is None:
        return None
    try:
        from mpi4py import MPI  # ChainerMN's own import error is a long paragraph
    except ImportError as e:
        raise UsageError('--communicator needs mpi4py and an MPI ({}); install them with '
                         "pip install -e '.[mpi]'".format(e))
    global _RANK
    _RANK = MPI.COMM_WORLD.rank
    name = communicator_name(args)
    import chainermn
    try:
        comm = chainermn.create_communicator(name)
    except Exception as e:  # noqa: BLE001  (NCCL or CUDA missing: one line, not a traceback)
        raise UsageError('cannot create the {} communicator ({}: {})'.format(
            name, type(e).__name__, ' '.join(str(e).split())))
    # An unexpected exception on one worker aborts them all, instead of leaving the others
    # waiting forever in the next collective (ChainerMN's own hook: MPI_Abort).
    chainermn.global_except_hook.add_hook()
    global _ACTIVE
    _ACTIVE = comm
    if args.batchsize % comm.size:
        raise UsageError('--batchsize {} is the global minibatch and must be divisible by the '
                         '{} workers'.format(args.batchsize, comm.size), everywhere=True)
    if args.excerpts_per_epoch % comm.size:
        # Each worker draws its share of an epoch; a share rounded up would make the epoch
        # larger than summary.json says.
        raise UsageError('--excerpts-per-epoch {} must be divisible by the {} workers, each '
                         'drawing an equal share of an epoch'.format(args.excerpts_per_epoch,
                                                                     comm.size), everywhere=True)
    if args.validation_excerpts < comm.size:
        raise UsageError('--validation-excerpts {} leaves a worker without any: give at least '
                         '{}'.format(args.validation_excerpts, comm.size), everywhere=True)
    return comm


def active():
    """The communicator of this process's run, once created; None without MPI."""
    return _ACTIVE


def process_rank():
    """This process's MPI rank once ``--communicator`` started MPI; 0 otherwise."""
    return _RANK


def rank(comm):
    return 0 if comm is None else comm.rank


def size(comm):
    return 1 if comm is None else comm.size


def is_writer(comm):
    """Whether this process writes the results folder: rank 0, or the only process."""
    return rank(comm) == 0


def device_of(args, comm):
    """``--gpu`` under MPI: the GPU of this process's local rank (ChainerMN's examples)."""
    if comm is None or args.gpu < 0:
        return args.gpu
    return comm.intra_rank


def scatter(dataset, comm):
    """This worker's part of ``dataset``, which every worker holds whole (the validation set is
    the same on every worker): ChainerMN's scatter_index hands out near-equal contiguous parts
    without duplicates, so the multi-node evaluator's mean is over every example once."""
    if comm is None:
        return dataset
    import chainermn.datasets
    begin, end = chainermn.datasets.scatter_index(len(dataset), comm, force_equal_length=False)
    return chainer.datasets.SubDataset(dataset, begin, end)


def agree(comm, flag):
    """True on every worker when ``flag`` is true on any (a stop every worker takes together)."""
    if comm is None:
        return bool(flag)
    return bool(comm.mpi_comm.allreduce(int(bool(flag))))


def broadcast(comm, value):
    """Rank 0's ``value`` on every worker."""
    if comm is None:
        return value
    return comm.bcast_obj(value if comm.rank == 0 else None)


def describe(comm, name):
    """summary.json's record of the data parallelism."""
    return {'communicator': name, 'workers': size(comm)}


def abort(comm, status):
    """End every worker now: after an error on one worker, the others would wait forever in
    the next collective operation."""
    if comm is not None and comm.size > 1:
        comm.mpi_comm.Abort(status)


def multi_node_batch_normalization(net, comm):
    """``net`` with MultiNodeBatchNormalization in place of every BatchNormalization, so the
    statistics are those of the global minibatch, as in the record's one-GPU run."""
    if comm is None:
        return net
    import chainermn.links
    with warnings.catch_warnings():  # "MultiNodeBatchNormalization is experimental": no action
        warnings.filterwarnings('ignore', 'chainermn.links.MultiNodeBatchNormalization is '
                                'experimental', FutureWarning)
        return chainermn.links.create_mnbn_model(net, comm)


def multi_node_optimizer(optimizer, comm):
    """ChainerMN's optimizer: gradients all-reduced (averaged) before ``optimizer``'s update.

    ``optimizer`` is set up already.  ChainerMN's optimizer spends its first ``update`` on
    broadcasting rank 0's parameters, without an update; that broadcast is made here instead,
    so iteration 1 updates, as in one process, and N workers train exactly like one.
    """
    if comm is None:
        return optimizer
    import chainermn
    multi_node = chainermn.create_multi_node_optimizer(optimizer, comm)
    multi_node.is_changed(optimizer.target)  # records the parameters: no broadcast at update 1
    comm.bcast_data(optimizer.target)
    return multi_node


def multi_node_evaluator(evaluator, comm):
    """ChainerMN's evaluator: each worker evaluates its part; the result is the global mean."""
    if comm is None:
        return evaluator
    import chainermn
    return chainermn.create_multi_node_evaluator(evaluator, comm)


def aggregated_loss(comm, key='main/loss'):
    """ChainerMN's ObservationAggregator: ``key`` averaged over the workers every iteration,
    so the log and the NaN stop see the loss of the global minibatch."""
    import chainermn.extensions

    class ObservationAggregator(chainermn.extensions.ObservationAggregator):
        """ChainerMN 7.8.1's aggregator moves a reported Variable with ``to_device('native')``,
        a ChainerX device that Chainer without ChainerX refuses; hand it the value instead."""

        def trigger(self, trainer):
            """Every iteration, without a state: snapshots of any number of workers match."""
            return True

        def compute_summary(self, trainer):
            value = trainer.observation.get(self.original_key)
            if isinstance(value, chainer.Variable):
                trainer.observation[self.original_key] = float(value.array)
            return super().compute_summary(trainer)

    return ObservationAggregator(comm, key)

