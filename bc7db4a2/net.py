"""The AutoEncoder of experiment bc7db4a2, box by box as in the record's diagram (SPEC.md).

Input and output are 1 x 32 x 256 spectrograms (channel, time, frequency); the latent
variable is 4096 x 16 x 1 in (-1, 1).  enc6 and enc7 are the "full connection in the
frequency direction" that the previous experiment, c9335bce, lacked.
"""
import common  # noqa: F401  (Chainer compatibility)
from common.autoencoder import AutoEncoder, Box

LEAKY = 'leaky_relu'


class Net(AutoEncoder):
    ENCODER = (
        #   box     op        out   ksize   stride  pad     activation   # output C x T x F
        Box('enc1', 'conv',   32,   7,      1,      3,      LEAKY),      # 32 x 32 x 256
        Box('enc2', 'conv',   64,   4,      2,      1,      LEAKY),      # 64 x 16 x 128
        Box('enc3', 'conv',   64,   (1, 4), (1, 2), (0, 1), LEAKY),      # 64 x 16 x 64
        Box('enc4', 'conv',   64,   (1, 4), (1, 2), (0, 1), LEAKY),      # 64 x 16 x 32
        Box('enc5', 'conv',   64,   (1, 4), (1, 2), (0, 1), LEAKY),      # 64 x 16 x 16
        Box('enc6', 'conv',   1024, (1, 9), 1,      0,      LEAKY),      # 1024 x 16 x 8
        Box('enc7', 'conv',   4096, (1, 8), 1,      0,      LEAKY),      # 4096 x 16 x 1 (diagram: 1024, a typo)
        Box('enc8', 'conv',   4096, 1,      1,      0,      'tanh'),     # latent 4096 x 16 x 1, (-1, 1)
    )
    DECODER = (
        Box('dec8', 'conv',   4096, 1,      1,      0,      LEAKY),      # 4096 x 16 x 1
        Box('dec7', 'deconv', 1024, (1, 8), 1,      0,      LEAKY),      # 1024 x 16 x 8
        Box('dec6', 'deconv', 64,   (1, 9), 1,      0,      LEAKY),      # 64 x 16 x 16
        Box('dec5', 'deconv', 64,   (1, 4), (1, 2), (0, 1), LEAKY),      # 64 x 16 x 32
        Box('dec4', 'deconv', 64,   (1, 4), (1, 2), (0, 1), LEAKY),      # 64 x 16 x 64
        Box('dec3', 'deconv', 64,   (1, 4), (1, 2), (0, 1), LEAKY),      # 64 x 16 x 128
        Box('dec2', 'deconv', 32,   4,      2,      1,      LEAKY),      # 32 x 32 x 256 (diagram: 64, a typo)
        Box('dec1', 'conv',   1,    7,      1,      3,      'softplus', False),  # 1 x 32 x 256, (0, inf)
    )
