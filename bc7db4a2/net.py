"""The AutoEncoder of experiment bc7db4a2, box by box as in the record's diagram (SPEC.md).

Input and output are 1 x 32 x 256 spectrograms (channel, time, frequency); the latent
variable is 4096 x 16 x 1 in (-1, 1).  enc6 and enc7 are the "full connection in the
frequency direction" that the previous experiment, c9335bce, lacked; the outer boxes
(enc1-enc5, dec5-dec1) are the ones both experiments share (common/autoencoder.py).
"""
import common  # noqa: F401  (Chainer compatibility)
from common.autoencoder import LEAKY, SHARED_DECODER, SHARED_ENCODER, AutoEncoder, Box


class Net(AutoEncoder):
    ENCODER = SHARED_ENCODER + (                                     # enc1-enc5: 64 x 16 x 16
        #   box     op        out   ksize   stride  pad     activation   # output C x T x F
        Box('enc6', 'conv',   1024, (1, 9), 1,      0,      LEAKY),      # 1024 x 16 x 8
        Box('enc7', 'conv',   4096, (1, 8), 1,      0,      LEAKY),      # 4096 x 16 x 1 (diagram: 1024, a typo)
        Box('enc8', 'conv',   4096, 1,      1,      0,      'tanh'),     # latent 4096 x 16 x 1, (-1, 1)
    )
    DECODER = (
        Box('dec8', 'conv',   4096, 1,      1,      0,      LEAKY),      # 4096 x 16 x 1
        Box('dec7', 'deconv', 1024, (1, 8), 1,      0,      LEAKY),      # 1024 x 16 x 8
        Box('dec6', 'deconv', 64,   (1, 9), 1,      0,      LEAKY),      # 64 x 16 x 16
    ) + SHARED_DECODER                                               # dec5-dec1: 1 x 32 x 256
    # dec2's output is 32 x 32 x 256 (the diagram's arrow says 64, a typo).
