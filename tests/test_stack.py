"""The Chainer parts the experiment uses work on this NumPy: layers, RMSprop, npz, Trainer."""
import json
import os

import numpy
import pytest

import common  # noqa: F401
import chainer
import chainer.functions as F
import chainer.links as L
from chainer import training
from chainer.training import extensions

from common.objectives import Reconstruction as Regressor  # the experiments' MSE objective


class TinyAutoEncoder(chainer.Chain):
    """One box of each kind of the bc7db4a2 diagram, at toy size."""

    def __init__(self):
        super().__init__()
        with self.init_scope():
            self.enc = L.Convolution2D(1, 4, ksize=(1, 4), stride=(1, 2), pad=(0, 1))
            self.bn_enc = L.BatchNormalization(4)
            self.mid = L.Convolution2D(4, 4, ksize=1)
            self.bn_mid = L.BatchNormalization(4)
            self.dec = L.Deconvolution2D(4, 4, ksize=(1, 4), stride=(1, 2), pad=(0, 1))
            self.bn_dec = L.BatchNormalization(4)
            self.out = L.Convolution2D(4, 1, ksize=3, pad=1)

    def forward(self, x):
        h = self.bn_enc(F.leaky_relu(self.enc(x)))
        h = self.bn_mid(F.tanh(self.mid(h)))
        h = self.bn_dec(F.leaky_relu(self.dec(h)))
        return F.softplus(self.out(h))


def _data(n=8, seed=0):
    return numpy.random.RandomState(seed).uniform(0, 6.9, (n, 1, 4, 16)).astype(numpy.float32)


def test_forward_backward_and_rmsprop_update_reduce_the_loss():
    numpy.random.seed(0)
    model = Regressor(TinyAutoEncoder())
    optimizer = chainer.optimizers.RMSprop(lr=1e-2)
    optimizer.setup(model)
    x = _data()
    losses = []
    for _ in range(30):
        loss = model(x)
        model.cleargrads()
        loss.backward()
        for param in model.params():
            assert param.grad is not None and numpy.isfinite(param.grad).all()
        optimizer.update()
        losses.append(float(loss.array))
    assert model.predictor(x).shape == x.shape
    assert losses[-1] < 0.5 * losses[0]


def test_save_npz_load_npz_round_trip(tmp_path):
    a, b = TinyAutoEncoder(), TinyAutoEncoder()
    with chainer.using_config('train', True):
        a(_data())  # moves the BN running statistics away from their initial values
    chainer.serializers.save_npz(str(tmp_path / 'model.npz'), a)
    chainer.serializers.load_npz(str(tmp_path / 'model.npz'), b)
    for (name, pa), (_, pb) in zip(sorted(a.namedparams()), sorted(b.namedparams())):
        numpy.testing.assert_array_equal(pa.array, pb.array, err_msg=name)
    numpy.testing.assert_array_equal(a.bn_enc.avg_mean, b.bn_enc.avg_mean)
    with chainer.using_config('train', False):
        numpy.testing.assert_array_equal(a(_data()).array, b(_data()).array)


def _trainer(out, epochs):
    numpy.random.seed(0)
    model = Regressor(TinyAutoEncoder())
    optimizer = chainer.optimizers.RMSprop(lr=1e-3)
    optimizer.setup(model)
    train = chainer.iterators.SerialIterator(list(_data(16)), 4, shuffle=True)
    valid = chainer.iterators.SerialIterator(list(_data(8, seed=1)), 4, repeat=False,
                                             shuffle=False)
    updater = training.updaters.StandardUpdater(train, optimizer)
    trainer = training.Trainer(updater, (epochs, 'epoch'), out=str(out))
    trainer.extend(extensions.Evaluator(valid, model))
    trainer.extend(extensions.LogReport())
    trainer.extend(extensions.PlotReport(['main/loss', 'validation/main/loss'], 'epoch',
                                         file_name='loss.png'))
    trainer.extend(extensions.snapshot(filename='snapshot_epoch_{.updater.epoch}'),
                   trigger=(1, 'epoch'))
    return trainer, model


def test_trainer_snapshot_resume_continues_where_it_stopped(tmp_path):
    trainer, _ = _trainer(tmp_path / 'a', epochs=2)
    trainer.run()
    assert (tmp_path / 'a' / 'loss.png').stat().st_size > 0
    with open(tmp_path / 'a' / 'log') as f:
        assert len(json.load(f)) == 2

    resumed, model = _trainer(tmp_path / 'a', epochs=4)
    chainer.serializers.load_npz(str(tmp_path / 'a' / 'snapshot_epoch_2'), resumed)
    assert resumed.updater.epoch == 2
    resumed.run()
    with open(tmp_path / 'a' / 'log') as f:
        log = json.load(f)
    assert [entry['epoch'] for entry in log] == [1, 2, 3, 4]
    assert all(numpy.isfinite(entry['validation/main/loss']) for entry in log)
    assert os.path.exists(tmp_path / 'a' / 'snapshot_epoch_4')
