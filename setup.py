"""Installs `common`, the shared package of the bc7db4a2 reproduction, with its dependencies.

Experiment folders (bc7db4a2/, ...) are scripts run from the repository root, not packages.
Install with the constraints file (README.md, "Quick start"): Chainer 7.8.1 only builds with
setuptools < 81.
"""
from setuptools import setup

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
        # CuPy 14 for CUDA 12 with its CUDA libraries from the package index ([ctk]: cuBLAS, cuFFT,
        # cuRAND, cuSOLVER, cuSPARSE, NVRTC, the runtime), found without LD_LIBRARY_PATH, so the
        # NVIDIA driver is all the machine needs (README.md, "On a GPU").  CuPy 13 has no [ctk].
        # CuPy 14 has no cuDNN: Chainer runs its own kernels.  NCCL: Chainer imports CuPy's NCCL
        # module (multi-GPU updater), and without the library CuPy warns on every import.
        'gpu': ['cupy-cuda12x[ctk]>=14,<15', 'nvidia-nccl-cu12>=2.18.1,<3'],
        'test': ['pytest', 'selenium'],  # selenium: the HTML report's headless-browser test
    },
)
