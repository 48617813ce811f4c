"""Installs `common`, the shared package of the bc7db4a2 reproduction, with its dependencies.

Experiment folders (bc7db4a2/, ...) are scripts run from the repository root, not packages.
Install with the constraints file (README.md, "Quick start"): Chainer 7.8.1 only builds with
setuptools < 81.
"""
from setuptools import setup

MPI = ['mpi4py', 'mpich']

setup(
    name='bc7db4a2-reproduction',
    version='0.1.0',
    description='Chainer reproduction of the bc7db4a2 spectrogram AutoEncoder (2019)',
    packages=['common'],
    python_requires='>=3.10,<3.13',
    install_requires=[
        # The framework of the original experiment; 7.8.1 is its last release (frozen upstream).
        'chainer==7.8.1',
        # `import chainer` imports pkg_resources, which setuptools 81 removed.
        'setuptools<81',
        'numpy>=1.23',
        'scipy',
        'matplotlib',
        'pysptk',
        'pyworld',
        'soundfile',
    ],
    extras_require={
        'gpu': ['cupy-cuda12x'],
        # Data-parallel training with ChainerMN (common/distributed.py): mpi4py and an MPI that
        # pip installs (MPICH, with mpiexec), for machines without a system MPI.
        'mpi': MPI,
        # selenium: the HTML report's headless-browser test; MPI: the 2-process tests.
        'test': ['pytest', 'selenium'] + MPI,
    },
)
