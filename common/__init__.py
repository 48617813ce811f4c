"""Shared code of the bc7db4a2 reproduction: spectrograms, audio, datasets, training, plots.

Importing this package first checks that this Python has the project's dependencies
(:data:`REQUIREMENTS`), then applies :mod:`common.compat`, so Chainer 7.8.1 imports on current
Python and NumPy.  In the installed environment the import hook (``bc7db4a2_chainer_hook``,
registered at interpreter start by the .pth file setup.py installs) does the same on the first
``import chainer``, so the order of imports does not matter there; applying it here too keeps
``import common`` sufficient wherever the hook is not installed.

Every entry point imports this package before anything else (``python -m common.<tool>``
does by itself; each experiment's ``train.py`` imports it first), so an interpreter without
the dependencies, e.g. a bare ``python`` outside the project's ``.venv``, stops with one line
that says which interpreter to use or how to install, and exit status 2, instead of a
``ModuleNotFoundError`` traceback.  Imported from an interactive session it raises
:class:`MissingDependencies` (an ImportError) with the same line.
"""
import importlib.util
import os
import shlex
import sys

#: The folder holding ``common/``: the repository (experiment folders, data/, results/).
REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: (module, the requirement of setup.py's install_requires that provides it), for every
#: requirement; tests/test_first_hour.py checks that the two lists agree.
REQUIREMENTS = (
    ('chainer', 'chainer'),
    ('pkg_resources', 'setuptools'),
    ('numpy', 'numpy'),
    ('scipy', 'scipy'),
    ('matplotlib', 'matplotlib'),
    ('pysptk', 'pysptk'),
    ('pyworld', 'pyworld'),
    ('soundfile', 'soundfile'),
    ('jinja2', 'jinja2'),
    ('markdown_it', 'markdown-it-py'),
    ('pystoi', 'pystoi'),
)


class MissingDependencies(ImportError):
    """This Python lacks modules of :data:`REQUIREMENTS`: the message is one line."""


def _missing():
    missing = []
    for module, _ in REQUIREMENTS:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(module)
    return missing


def _command():
    """(program name, the command line after the interpreter) of what imported us: e.g.
    ('train.py', 'bc7db4a2/train.py --gpu -1'), ('python -m common.evaluate', '-m common.evaluate
    results/x')."""
    argv = list(getattr(sys, 'orig_argv', None) or [sys.executable] + sys.argv)[1:]
    if '-m' in argv:
        start = argv.index('-m')
        prog = 'python -m ' + ' '.join(argv[start + 1:start + 2])
    else:
        start = next((i for i, arg in enumerate(argv) if arg.endswith('.py')), None)
        if start is None:  # an interactive session, python -c
            return 'python', ''
        prog = os.path.basename(argv[start])
    return prog, ' '.join(shlex.quote(arg) for arg in argv[start:])


def _where_to_run(command):
    """Which interpreter runs ``command``, or how to install one: the end of the message."""
    environment = os.path.join(REPOSITORY, '.venv')
    venv = os.path.join(environment, 'bin', 'python')
    where = '' if os.path.abspath(os.curdir) == REPOSITORY else ' in ' + REPOSITORY
    install = ('PIP_CONSTRAINT=$PWD/constraints.txt PIP_BUILD_CONSTRAINT=$PWD/constraints.txt '
               '.venv/bin/pip install -e .')
    if os.path.exists(venv) and os.path.realpath(sys.prefix) == os.path.realpath(environment):
        return 'the install did not finish: run {}{} (README.md, "Quick start")'.format(
            install, where)
    if os.path.exists(venv):
        shown = os.path.relpath(venv) if not os.path.relpath(venv).startswith('..') else venv
        return 'run it with the project\'s environment: {}'.format(
            ' '.join(filter(None, (shown, command))))
    return ('install the project\'s environment first (README.md, "Quick start"{}: python3 -m '
            'venv .venv && {}), then run {}'.format(
                where, install, ' '.join(filter(None, ('.venv/bin/python', command)))))


def _check_requirements():
    missing = _missing()
    if not missing:
        return
    prog, command = _command()
    message = 'this Python ({}) lacks {} of the project\'s dependencies ({}); {}'.format(
        sys.executable, 'all' if len(missing) == len(REQUIREMENTS) else len(missing),
        ', '.join(missing), _where_to_run(command))
    main = sys.modules.get('__main__')
    if sys.argv[:1] == ['-m'] or getattr(main, '__file__', None):  # a script or `python -m`
        sys.stderr.write('{}: error: {}\n'.format(prog, message))
        raise SystemExit(2)
    raise MissingDependencies(message)


_check_requirements()

from common import compat  # noqa: E402  (after the check: it imports NumPy)

compat.apply()
