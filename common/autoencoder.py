"""Build a convolutional AutoEncoder from a table that reads like the record's diagram.

Each experiment's ``net.py`` lists its boxes, one :class:`Box` per line, encoder then
decoder, and subclasses :class:`AutoEncoder` with that table.  Every box is
"convolution, activation, BatchNormalization" in that order (SPEC.md, "Decision on order").
The last encoder box's output after its activation is the latent variable; that box's
BatchNormalization is the first step of decoding.
"""
import collections

import common  # noqa: F401  (Chainer compatibility)
import chainer
import chainer.functions as F
import chainer.links as L

from common import fast_convolution
from common import fast_normalization

#: One box of the diagram.  ``op`` is 'conv' (Convolution2D) or 'deconv' (Deconvolution2D);
#: ``activation`` names a chainer.functions function; ``batch_norm`` is False only for the output.
Box = collections.namedtuple(
    'Box', 'name op out_channels ksize stride pad activation batch_norm')
Box.__new__.__defaults__ = (True,)

ACTIVATIONS = {
    'leaky_relu': F.leaky_relu,  # Chainer's default slope, 0.2 ("ReakyLeRU" in the record)
    'tanh': F.tanh,
    'softplus': F.softplus,
}
#: Subclasses of L.Convolution2D / L.Deconvolution2D with the same parameters (model files load
#: into either), faster on CPU, stock on GPU and under
#: ``chainer.using_config('use_fast_convolution', False)``: see common/fast_convolution.py.
CONVOLUTIONS = {'conv': fast_convolution.Convolution2D,
                'deconv': fast_convolution.Deconvolution2D}
STOCK_CONVOLUTIONS = {'conv': L.Convolution2D, 'deconv': L.Deconvolution2D}

LEAKY = 'leaky_relu'

#: enc1-enc5, the boxes c9335bce and bc7db4a2 share: 1 x 32 x 256 -> 64 x 16 x 16.
SHARED_ENCODER = (
    #   box     op        out   ksize   stride  pad     activation   # output C x T x F
    Box('enc1', 'conv',   32,   7,      1,      3,      LEAKY),      # 32 x 32 x 256
    Box('enc2', 'conv',   64,   4,      2,      1,      LEAKY),      # 64 x 16 x 128
    Box('enc3', 'conv',   64,   (1, 4), (1, 2), (0, 1), LEAKY),      # 64 x 16 x 64
    Box('enc4', 'conv',   64,   (1, 4), (1, 2), (0, 1), LEAKY),      # 64 x 16 x 32
    Box('enc5', 'conv',   64,   (1, 4), (1, 2), (0, 1), LEAKY),      # 64 x 16 x 16
)
#: dec5-dec1, the boxes they share: 64 x 16 x 16 -> 1 x 32 x 256, softplus, range (0, inf).
SHARED_DECODER = (
    Box('dec5', 'deconv', 64,   (1, 4), (1, 2), (0, 1), LEAKY),      # 64 x 16 x 32
    Box('dec4', 'deconv', 64,   (1, 4), (1, 2), (0, 1), LEAKY),      # 64 x 16 x 64
    Box('dec3', 'deconv', 64,   (1, 4), (1, 2), (0, 1), LEAKY),      # 64 x 16 x 128
    Box('dec2', 'deconv', 32,   4,      2,      1,      LEAKY),      # 32 x 32 x 256
    Box('dec1', 'conv',   1,    7,      1,      3,      'softplus', False),  # 1 x 32 x 256
)


class Block(chainer.Chain):
    """One box: convolution, activation, then (optionally) BatchNormalization.

    The BatchNormalization link is common/fast_normalization.py's subclass of the stock link
    (same parameters and statistics): on CPU, ``forward`` hands it the convolution's output to
    apply the activation and the normalization in one node, in place on that output, which
    nothing else reads.
    """

    def __init__(self, box, in_channels):
        super().__init__()
        self.activation_name = box.activation
        self.activation = ACTIVATIONS[box.activation]
        with self.init_scope():
            self.conv = CONVOLUTIONS[box.op](in_channels, box.out_channels, box.ksize,
                                             box.stride, box.pad)
            if box.batch_norm:
                self.bn = fast_normalization.BatchNormalization(box.out_channels)

    def activate(self, x):
        """Convolution and activation, without the BatchNormalization."""
        return self.activation(self.conv(x))

    def normalize(self, h):
        return self.bn(h) if hasattr(self, 'bn') else h

    def forward(self, x):
        # Another BatchNormalization (ChainerMN's multi-node one, under MPI) runs on its own, and
        # so does everything with use_fast_normalization off (the activation is self.activation).
        if isinstance(getattr(self, 'bn', None), fast_normalization.BatchNormalization) \
                and self.activation_name in fast_normalization.ACTIVATIONS \
                and fast_normalization.enabled():
            return self.bn.activate_and_normalize(self.conv(x), self.activation_name,
                                                  overwrite=True)
        return self.normalize(self.activate(x))


class AutoEncoder(chainer.Chain):
    """An AutoEncoder whose layers are the class attributes ENCODER and DECODER (tables of Box).

    ``encode(x)`` returns the latent variable (the activation of the last encoder box),
    ``decode(z)`` starts with that box's BatchNormalization, ``forward(x) = decode(encode(x))``.
    Links are named after the boxes (enc1/conv/W, enc1/bn/gamma, ...).
    """

    ENCODER = ()
    DECODER = ()
    IN_CHANNELS = 1

    def __init__(self):
        super().__init__()
        in_channels = self.IN_CHANNELS
        with self.init_scope():
            for box in self.ENCODER + self.DECODER:
                setattr(self, box.name, Block(box, in_channels))
                in_channels = box.out_channels

    @property
    def encoder(self):
        return [self[box.name] for box in self.ENCODER]

    @property
    def decoder(self):
        return [self[box.name] for box in self.DECODER]

    def encode(self, x):
        *blocks, latent = self.encoder
        h = x
        for block in blocks:
            h = block(h)
        return latent.activate(h)

    def decode(self, z):
        h = self.encoder[-1].normalize(z)
        for block in self.decoder:
            h = block(h)
        return h

    def forward(self, x):
        return self.decode(self.encode(x))

    def trace(self, x):
        """[(box name, its output)] for every box in order, as the diagram's arrows show them.

        The last encoder box's entry is the latent variable (before its BatchNormalization).
        """
        *blocks, latent = self.encoder
        outputs = []
        h = x
        for block in blocks:
            h = block(h)
            outputs.append((block.name, h))
        z = latent.activate(h)
        outputs.append((latent.name, z))
        h = latent.normalize(z)
        for block in self.decoder:
            h = block(h)
            outputs.append((block.name, h))
        return outputs

    def count_params(self):
        return sum(param.size for param in self.params())
