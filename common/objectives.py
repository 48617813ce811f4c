"""Training objectives: Chains that wrap an AutoEncoder and report its loss.

An experiment's ``train.py`` wraps its net in one of these and hands it to the optimizer.  A
later experiment with another objective (a latent regularizer, a perceptual loss) adds its own
Chain here or in its folder, so the objectives of earlier experiments stay as they were.
"""
import common  # noqa: F401
import chainer
import chainer.functions as F


class Reconstruction(chainer.Chain):
    """The records' loss ("学習"): mean squared error between input and output spectrogram.

    Reports ``loss`` (``main/loss`` in training, ``validation/main/loss`` under the Evaluator).
    """

    #: The loss's name in summary.json's hyper-parameters.
    LOSS = 'mean_squared_error'

    def __init__(self, predictor):
        super().__init__()
        with self.init_scope():
            self.predictor = predictor

    def forward(self, x):
        loss = F.mean_squared_error(self.predictor(x), x)
        chainer.report({'loss': loss}, self)
        return loss
