#!/usr/bin/env python
"""Experiment bc7db4a2: the AutoEncoder with full connection in the frequency direction.

Trains as recorded: RMSprop lr 1e-5, minibatch 50, 200 epochs, mean squared error between
input and output spectrograms.  On a GPU:

    python bc7db4a2/train.py --gpu 0

The results folder (--out, default results/bc7db4a2) gets the learning curve (loss.png),
spectrogram images and audio, the log, snapshots, model.npz, summary.json and index.html.
"""
import sys

import common  # noqa: F401  (Chainer compatibility; must come before chainer)
from common import experiment, protocol
from net import Net

RECORD = dict(epoch=200, batchsize=50, lr=1e-5, **protocol.UNRECORDED)

if __name__ == '__main__':
    sys.exit(experiment.main('bc7db4a2', Net, __doc__, **RECORD))
