"""The AutoEncoder of experiment c9335bce, the predecessor of bc7db4a2 (SPEC.md, "Model c9335bce").

Input and output are 1 x 32 x 256 spectrograms (channel, time, frequency); the latent
variable is 1024 x 16 x 9 (tanh, so (-1, 1); the record labels it (0, 1)).  enc6 was meant to
connect the frequency direction fully, but its 1 x 8 kernel leaves 9 frequency positions:
the record's own finding, which bc7db4a2 fixes.  enc1-enc5 and dec5-dec1 are bc7db4a2's.
"""
import common  # noqa: F401  (Chainer compatibility)
from common.autoencoder import LEAKY, SHARED_DECODER, SHARED_ENCODER, AutoEncoder, Box


class Net(AutoEncoder):
    ENCODER = SHARED_ENCODER + (                                     # enc1-enc5: 64 x 16 x 16
        #   box     op        out   ksize   stride  pad     activation   # output C x T x F
        Box('enc6', 'conv',   1024, (1, 8), 1,      0,      LEAKY),      # 1024 x 16 x 9
        Box('enc7', 'conv',   1024, 1,      1,      0,      'tanh'),     # latent 1024 x 16 x 9
    )
    DECODER = (
        Box('dec7', 'conv',   1024, 1,      1,      0,      LEAKY),      # 1024 x 16 x 9
        Box('dec6', 'deconv', 64,   (1, 8), 1,      0,      LEAKY),      # 64 x 16 x 16
    ) + SHARED_DECODER                                               # dec5-dec1: 1 x 32 x 256
