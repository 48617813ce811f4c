"""Chainer imports in any order in the installed environment (bc7db4a2_chainer_hook, setup.py).

Each check runs a fresh interpreter of this environment, as a researcher's own script or
notebook would start, from a folder outside the repository and without importing common first.
README installs the project in editable mode; a last check builds the regular wheel that
`pip install .` installs, and looks for the .pth file at its top.
"""
import os
import shutil
import subprocess
import sys
import zipfile

from conftest import REPOSITORY

PTH_NAME = 'bc7db4a2_chainer_hook.pth'


def python(code, cwd):
    return subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


def test_chainer_imports_first_and_runs_what_needs_compat(tmp_path):
    # F.as_strided reads numpy.sctypes['int'] at import and numpy.sctypes['float'] in backward.
    result = python('import chainer; import chainer.functions as F; import numpy\n'
                    'x = chainer.Variable(numpy.arange(6, dtype=numpy.float32))\n'
                    'F.sum(F.as_strided(x, (3, 2), (1, 1))).backward()\n'
                    'print(chainer.__version__, x.grad.tolist())', cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split('\n')[0] == '7.8.1 [1.0, 2.0, 2.0, 1.0, 0.0, 0.0]'
    assert result.stderr == ''


def test_chainermn_imports_first(tmp_path):
    # What `mpiexec python -c "import chainermn"` starts with (mpi4py is not needed to import).
    result = python('import chainermn', cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ''


def test_the_hook_imports_nothing_until_chainer_is_imported(tmp_path):
    result = python('import sys, bc7db4a2_chainer_hook as hook\n'
                    'print(hook.ChainerCompatFinder in sys.meta_path,'
                    ' sorted(m for m in ("numpy", "common", "chainer") if m in sys.modules))\n'
                    'import chainer\n'
                    'print(hook.ChainerCompatFinder in sys.meta_path,'
                    ' "common.compat" in sys.modules)',
                    cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split('\n')[:2] == ['True []', 'False True']


def test_a_regular_wheel_installs_the_pth_file_into_site_packages(tmp_path):
    # `pip install .` (not README's editable install): pip builds a wheel as here, in an
    # isolated build environment, and installs the files at its top into site-packages.
    source = tmp_path / 'source'
    source.mkdir()
    for name in ('setup.py', 'pyproject.toml', 'bc7db4a2_chainer_hook.py'):
        shutil.copy(os.path.join(REPOSITORY, name), source)
    shutil.copytree(os.path.join(REPOSITORY, 'common'), source / 'common',
                    ignore=shutil.ignore_patterns('__pycache__'))
    result = subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--no-deps', '-q', '-w',
                             str(tmp_path), str(source)], capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    (wheel_path,) = tmp_path.glob('*.whl')
    with zipfile.ZipFile(wheel_path) as wheel:
        files = {name: wheel.read(name) for name in wheel.namelist()}
    line = 'import bc7db4a2_chainer_hook; bc7db4a2_chainer_hook.install()\n'
    assert files[PTH_NAME].decode() == line
    assert 'bc7db4a2_chainer_hook.py' in files and 'common/compat.py' in files
    record = next(data for name, data in files.items() if name.endswith('.dist-info/RECORD'))
    assert record.decode().count(PTH_NAME + ',sha256=') == 1
