"""Shared code of the bc7db4a2 reproduction: spectrograms, audio, datasets, training, plots.

Importing this package first applies :mod:`common.compat`, so Chainer 7.8.1 imports on
current Python and NumPy.  Experiment folders import ``common`` before ``chainer``.
"""
from common import compat

compat.apply()
