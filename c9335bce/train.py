#!/usr/bin/env python
"""Experiment c9335bce: the first AutoEncoder, before bc7db4a2 fixed its frequency direction.

Trains as recorded: RMSprop lr 1e-5, minibatch 100, 200 epochs, mean squared error between
input and output spectrograms.  On a GPU:

    python c9335bce/train.py --gpu 0

The results folder (--out, default results/c9335bce) gets the learning curve (loss.png),
spectrogram images and audio, the log, snapshots, model.npz, summary.json and index.html.
"""
import sys

import common  # noqa: F401  (Chainer compatibility; must come before chainer)
from common import experiment, protocol
from net import Net

RECORD = dict(epoch=200, batchsize=100, lr=1e-5, **protocol.UNRECORDED)

if __name__ == '__main__':
    sys.exit(experiment.main('c9335bce', Net, __doc__, **RECORD))
