"""Installs `common`, the shared package of the bc7db4a2 reproduction, with its dependencies.

Experiment folders (bc7db4a2/, ...) are scripts run from the repository root, not packages.
Install with the constraints file (README.md, "Quick start"): Chainer 7.8.1 only builds with
setuptools < 81.

Besides `common`, the install puts two files at the top of site-packages: the module
`bc7db4a2_chainer_hook` and PTH_NAME, a path configuration file whose one line the `site` module
runs at every interpreter start.  It registers the hook that applies `common.compat` on the first
`import chainer`, so Chainer imports in any order (bc7db4a2_chainer_hook.py says how).  A .pth
file at the top of a wheel is installed into site-packages; setuptools puts it there for
`pip install .` when build_py copies it into the build folder, but its editable wheels
(`pip install -e .`, PEP 660) hold only the files that map imports to the source tree, so
editable_wheel adds it to the finished wheel.  pyproject.toml makes pip build both kinds through
setuptools.build_meta on every pip version (legacy `setup.py develop` would install no .pth).
"""
import base64
import hashlib
import os
import zipfile

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.editable_wheel import editable_wheel

PTH_NAME = 'bc7db4a2_chainer_hook.pth'
# After __editable__.*.pth in site's sorted order, so the hook module is importable then.
PTH_LINE = 'import bc7db4a2_chainer_hook; bc7db4a2_chainer_hook.install()\n'


class build_py_with_pth(build_py):
    """build_py that also writes PTH_NAME at the top of the build folder (regular wheels)."""

    def run(self):
        super().run()
        if not self.editable_mode:
            with open(os.path.join(self.build_lib, PTH_NAME), 'w', encoding='utf-8') as stream:
                stream.write(PTH_LINE)

    def get_outputs(self, include_bytecode=True):
        return super().get_outputs(include_bytecode) + [os.path.join(self.build_lib, PTH_NAME)]


class editable_wheel_with_pth(editable_wheel):
    """editable_wheel that adds PTH_NAME (and its RECORD line) to the editable wheel it built."""

    def run(self):
        super().run()
        wheels = [name for name in os.listdir(self.dist_dir) if '-0.editable-' in name]
        if len(wheels) != 1:
            raise RuntimeError('expected one editable wheel in %s, found %s'
                               % (self.dist_dir, wheels))
        _add_to_wheel(os.path.join(self.dist_dir, wheels[0]), PTH_NAME, PTH_LINE.encode())


def _add_to_wheel(path, name, data):
    """Rewrite the wheel at `path` with the file `name` added and listed in its RECORD."""
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()
    with zipfile.ZipFile(path) as source:
        entries = [(info, source.read(info)) for info in source.infolist()]
    with zipfile.ZipFile(path, 'w', zipfile.ZIP_DEFLATED) as wheel:
        wheel.writestr(name, data)
        for info, content in entries:
            if info.filename.endswith('.dist-info/RECORD'):
                content += ('%s,sha256=%s,%d\n' % (name, digest, len(data))).encode()
            wheel.writestr(info, content)


MPI = ['mpi4py', 'mpich']
METRICS = ['pesq']
MOS = ['speechmos', 'onnxruntime']
# The versions checked with NumPy 2, setuptools < 81 and chainer 7.8.1.
TENSORBOARD = ['tensorboardX>=2.6.5', 'tensorboard>=2.21']

setup(
    name='bc7db4a2-reproduction',
    version='0.1.0',
    description='Chainer reproduction of the bc7db4a2 spectrogram AutoEncoder (2019)',
    packages=['common'],
    # The pages' Jinja2 templates (common/report.py), in regular and editable installs alike.
    package_data={'common': ['templates/*.html', 'templates/*.md']},
    py_modules=['bc7db4a2_chainer_hook'],
    cmdclass={'build_py': build_py_with_pth, 'editable_wheel': editable_wheel_with_pth},
    python_requires='>=3.10,<3.14',
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
        # The HTML pages (common/report.py, common/compare.py): templates with autoescaping,
        # and README texts as CommonMark with raw HTML off.
        'jinja2>=3.1',
        'markdown-it-py>=3',
        # STOI and ESTOI in common.evaluate (numpy and scipy only; its bands stop near 4.3 kHz).
        'pystoi',
    ],
    extras_require={
        # CuPy 14 for CUDA 12 with its CUDA libraries from the package index ([ctk]: cuBLAS, cuFFT,
        # cuRAND, cuSOLVER, cuSPARSE, NVRTC, the runtime), found without LD_LIBRARY_PATH, so the
        # NVIDIA driver is all the machine needs (README.md, "On a GPU").  CuPy 13 has no [ctk].
        # CuPy 14 has no cuDNN: Chainer runs its own kernels.  NCCL: Chainer imports CuPy's NCCL
        # module (multi-GPU updater), and without the library CuPy warns on every import; it is
        # also what ChainerMN's pure_nccl communicator uses.
        'gpu': ['cupy-cuda12x[ctk]>=14,<15', 'nvidia-nccl-cu12>=2.18.1,<3'],
        # Data-parallel training with ChainerMN (common/distributed.py): mpi4py and an MPI that
        # pip installs (MPICH, with mpiexec), for machines without a system MPI.
        'mpi': MPI,
        # Narrowband PESQ in common.evaluate: the ITU-T P.862 reference code, built from source
        # (no wheels), so it needs a C compiler; without it evaluate skips PESQ and says why.
        'metrics': METRICS,
        # DNSMOS P.835 (common.evaluate --dnsmos): the ONNX model that speechmos ships (it is
        # loaded from there; speechmos' own module, which needs librosa, is not imported) run
        # by onnxruntime.  Wheels only, no download at run time.
        'mos': MOS,
        # --tensorboard and python -m common.tensorboard (common/tensorboard.py): tensorboardX
        # writes the event files (numpy, packaging, protobuf; no torch), TensorBoard serves them.
        'tensorboard': TENSORBOARD,
        # selenium: the HTML report's headless-browser test; MPI: the 2-process tests; METRICS,
        # MOS: the PESQ and DNSMOS tests (they skip where these are not installed); TensorBoard:
        # the event files are read back with it, and its server is started.
        # pytest-xdist: the suite in two processes (pytest -n 2, README.md).
        'test': ['pytest', 'pytest-xdist', 'selenium'] + MPI + METRICS + MOS + TENSORBOARD,
    },
)
