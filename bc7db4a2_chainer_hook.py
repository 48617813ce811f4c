"""Applies :mod:`common.compat` the moment Chainer is first imported, whatever was imported before.

Chainer 7.8.1 cannot even be imported on NumPy 2 or Python >= 3.12 without ``common.compat``.
Installing this project (``pip install -e .`` or ``pip install .``) puts
``bc7db4a2_chainer_hook.pth`` into site-packages (see setup.py); Python's :mod:`site` runs its
one line at every interpreter start, which calls :func:`install`.  That only puts a finder at the
front of ``sys.meta_path`` and imports nothing, so interpreters that never touch Chainer pay for
finding and running this module alone (1.4 ms more per ``python -c pass`` in an editable install,
median of 40 starts on a 2-core machine; importing NumPy through ``common`` at every start cost
290 ms instead).  On the first ``import chainer`` (or ``chainer.x``, or anything that imports it,
such as ``chainermn``) the finder removes itself, applies ``common.compat`` and declines to find
the module, so the regular finders load Chainer as usual.

This is a top-level module, not part of ``common``, because importing ``common`` applies
``common.compat``, which imports NumPy: the cost that every interpreter start would then pay.
"""
import sys


class ChainerCompatFinder:
    """A one-shot meta path finder: on the first import of ``chainer``, apply ``common.compat``."""

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name != 'chainer':
            return None
        uninstall()  # before importing anything, so this runs once
        from common import compat
        compat.apply()
        return None  # the regular finders find Chainer itself


def install():
    """Put the finder first in ``sys.meta_path``, unless it is there or Chainer is imported."""
    if ChainerCompatFinder not in sys.meta_path and 'chainer' not in sys.modules:
        sys.meta_path.insert(0, ChainerCompatFinder)


def uninstall():
    """Take the finder out of ``sys.meta_path`` (nothing if it is not there)."""
    while ChainerCompatFinder in sys.meta_path:
        sys.meta_path.remove(ChainerCompatFinder)
