"""Shared code of the bc7db4a2 reproduction: spectrograms, audio, datasets, training, plots.

Importing this package first applies :mod:`common.compat`, so Chainer 7.8.1 imports on
current Python and NumPy.  In the installed environment the import hook
(``bc7db4a2_chainer_hook``, registered at interpreter start by the .pth file setup.py installs)
does the same on the first ``import chainer``, so the order of imports does not matter there;
applying it here too keeps ``import common`` sufficient wherever the hook is not installed.
"""
from common import compat

compat.apply()
