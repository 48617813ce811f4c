"""Finished results folders: their summary.json, their log and their trained network.

A finished run is a folder written by an experiment's train.py to the end: it holds
``summary.json`` (which names the experiment's net, e.g. ``bc7db4a2/net.py:Net``), ``log``
and ``model.npz``.  Tools that use a trained model (evaluate, reconstruct, latent, report,
compare) need nothing but that folder.

Results folders travel between researchers, so everything in one is data, checked before it is
used (README.md, "Sharing results folders"):

- ``summary.json`` and ``log`` must be regular files of sane size (:data:`MAX_SUMMARY_BYTES`,
  :data:`MAX_LOG_BYTES`) holding JSON of the shape training writes;
- the net a summary names is only ever code of this repository: ``<id>/net.py:<Class>`` where
  ``<id>`` is a top-level experiment folder (a ``net.py`` beside a ``train.py``), checked before
  anything is imported, and ``<Class>`` must be an :class:`~common.autoencoder.AutoEncoder`;
- ``model.npz`` is read without pickle (:mod:`common.npz`).
"""
import importlib.util
import json
import numbers
import os
import re
import sys

import common  # noqa: F401

from common import files, npz, protocol
from common.autoencoder import AutoEncoder

REPOSITORY = common.REPOSITORY
#: summary.json is a few KiB; a log gains about 200 bytes per epoch (200 epochs: 40 KiB).
MAX_SUMMARY_BYTES = 2 ** 20
MAX_LOG_BYTES = 64 * 2 ** 20
#: An experiment id: one folder name (letters, digits, '_', '-', '.'; no leading '.').
EXPERIMENT_ID = re.compile(r'[A-Za-z0-9][A-Za-z0-9_.-]*')
NET_SPEC = re.compile(r'(?P<experiment>[^/\\:]+)/net\.py:(?P<name>[A-Za-z_][A-Za-z0-9_]*)')
#: Files (or folders) that tools add to a finished run, each computed from its model.npz.  When
#: the run in the folder is replaced (--force) or continued (--resume), they describe a model
#: that is gone, and training removes them with the finish (common/results.py): a page or a
#: comparison never shows an older model's numbers as the run's.  A tool that adds a file to a
#: finished run names it here.
DERIVED_FILES = (
    'evaluation.json',       # python -m common.evaluate
    'latent_analysis.json',  # python -m common.latent analyze (issue 21)
    'latent_analysis.png',
)
#: Top-level folders that are never experiments: results and data from elsewhere land in the
#: first two, even with a net.py and a train.py in them.
NOT_EXPERIMENTS = ('results', 'data', 'common', 'tests', 'bench')


class RunError(Exception):
    """A folder that is not a finished run, or a model that does not fit: one-line message."""


def _number(value):
    """A JSON number that is a float, or an integer a float holds (10**400 is neither)."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        return False
    try:
        float(value)
    except OverflowError:
        return False
    return True


def _integer(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _shape(value):
    return isinstance(value, list) and bool(value) and all(_integer(n) and n > 0 for n in value)


def _optional(check):
    return lambda value: value is None or check(value)


#: What the tools use of a summary, and the type each must have when present: (name, check,
#: what it must be).  'experiment', 'net' and 'parameters' must be present; the first two are
#: checked by EXPERIMENT_ID and :func:`parse_net`.
SUMMARY_FIELDS = (
    ('parameters', lambda v: _integer(v) and v > 0, 'a positive integer'),
    ('hyperparameters', lambda v: isinstance(v, dict), 'an object'),
    ('dataset', lambda v: isinstance(v, dict), 'an object'),
    ('environment', lambda v: isinstance(v, dict), 'an object'),
    ('latent_shape', _optional(_shape), 'a list of positive integers'),
    ('input_shape', _optional(lambda v: _shape(v) and len(v) == 3), 'three positive integers'),
    ('training_hours', _optional(_number), 'a number'),
    ('final_training_mse', _optional(_number), 'a number'),
    ('final_validation_mse', _optional(_number), 'a number'),
    ('peak_gpu_memory_mib', _optional(_number), 'a number'),
    ('gpu_memory_pool_mib', _optional(_number), 'a number'),
    ('epochs_completed', _optional(_integer), 'an integer'),
    ('iterations', _optional(_integer), 'an integer'),
    ('command', _optional(lambda v: isinstance(v, str)), 'a string'),
)
NESTED_FIELDS = (
    ('hyperparameters', 'seed', lambda v: _integer(v) and v in protocol.SEEDS,
     'an integer from {} to {}'.format(protocol.SEEDS.start, protocol.SEEDS.stop - 1)),
    ('hyperparameters', 'batchsize', _optional(_integer), 'an integer'),
    ('dataset', 'path', _optional(lambda v: isinstance(v, str)), 'a string'),
)
REQUIRED = ('experiment', 'net', 'parameters')
#: LogReport keys the tools read, which must be numbers where an entry has them.
LOG_NUMBERS = ('main/loss', 'validation/main/loss', 'elapsed_time')
#: ... and the counters, which LogReport writes as integers: 0 up to where a float (what a plot
#: axis holds) still counts exactly.  An epoch of 1e308 or Infinity is no epoch of a run.
LOG_COUNTERS = ('epoch', 'iteration')
MAX_COUNTER = 2 ** 53


def read_json(path, what, max_bytes):
    """The JSON content of a regular file of at most ``max_bytes`` bytes; RunError otherwise."""
    try:
        return json.loads(files.read_regular(path, max_bytes).decode('utf-8'))
    except files.FileRefused as e:
        raise RunError('unreadable {}: {}'.format(what, e))
    except (OSError, ValueError, RecursionError) as e:
        raise RunError('{}: unreadable {} ({})'.format(path, what, ' '.join(str(e).split())))


def load_summary(folder):
    """summary.json of a finished run, as a dict, its fields checked; RunError names what is
    missing or wrong."""
    if not os.path.isdir(folder):
        raise RunError('{}: no such results folder'.format(folder))
    path = os.path.join(folder, 'summary.json')
    if not os.path.lexists(path):
        raise RunError('{}: not a finished run (no summary.json; train it to the end, or '
                       'resume it with --resume)'.format(folder))
    summary = read_json(path, 'summary.json', MAX_SUMMARY_BYTES)
    if not isinstance(summary, dict):
        raise RunError('{}: summary.json is {}, not an object'.format(
            folder, 'null' if summary is None else 'a ' + _json_type(summary)))
    for key in REQUIRED:
        if key not in summary:
            raise RunError('{}: summary.json has no "{}"'.format(folder, key))
    for key, check, kind in SUMMARY_FIELDS:
        if key in summary and not check(summary[key]):
            raise RunError('{}: summary.json: "{}" must be {}, not {}'.format(
                folder, key, kind, _short(summary[key])))
    for outer, key, check, kind in NESTED_FIELDS:
        inner = summary.get(outer) or {}
        if key in inner and not check(inner[key]):
            raise RunError('{}: summary.json: "{}.{}" must be {}, not {}'.format(
                folder, outer, key, kind, _short(inner[key])))
    if not (isinstance(summary['experiment'], str)
            and EXPERIMENT_ID.fullmatch(summary['experiment'])):
        raise RunError('{}: summary.json: "experiment" {} is not an experiment id (a folder '
                       'name of this repository)'.format(folder, _short(summary['experiment'])))
    experiment, _ = parse_net(summary['net'])
    if experiment != summary['experiment']:
        raise RunError('{}: summary.json: net "{}" is not the net of experiment {}'.format(
            folder, summary['net'], summary['experiment']))
    return summary


def _json_type(value):
    return {bool: 'boolean', int: 'number', float: 'number', str: 'string',
            list: 'list', dict: 'object'}.get(type(value), type(value).__name__)


def _short(value):
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + '...'


def load_log(folder):
    """Chainer's LogReport entries of a run (a list of dicts), from a regular file of sane size."""
    path = os.path.join(folder, 'log')
    log = read_json(path, 'log', MAX_LOG_BYTES)
    if not isinstance(log, list) or not all(isinstance(entry, dict) for entry in log):
        raise RunError('{}: not a LogReport log (a list of objects)'.format(path))
    for entry in log:
        for key in LOG_NUMBERS:
            if key in entry and not _number(entry[key]):
                raise RunError('{}: "{}" must be a number, not {}'.format(
                    path, key, _short(entry[key])))
        for key in LOG_COUNTERS:
            value = entry.get(key, 0)
            if not (_integer(value) and 0 <= value <= MAX_COUNTER):
                raise RunError('{}: "{}" must be an integer from 0 to {}, not {}'.format(
                    path, key, MAX_COUNTER, _short(value)))
        if 'epoch' not in entry:
            raise RunError('{}: an entry has no "epoch"'.format(path))
    return log


def experiment_folder(experiment_id):
    """The repository's folder of an experiment, or RunError: ``experiment_id`` must name a
    top-level folder (not one of NOT_EXPERIMENTS, not a link out of the repository) that
    holds a ``net.py`` beside a ``train.py``.  Nothing is read or imported."""
    if not isinstance(experiment_id, str) or not EXPERIMENT_ID.fullmatch(experiment_id):
        raise RunError('{} is not an experiment id (a folder name of this repository)'.format(
            _short(experiment_id)))
    if experiment_id in NOT_EXPERIMENTS:
        raise RunError('{} is not an experiment folder'.format(experiment_id))
    folder = os.path.join(REPOSITORY, experiment_id)
    root = os.path.realpath(REPOSITORY)
    for name in ('net.py', 'train.py'):
        path = os.path.join(folder, name)
        if (not os.path.isfile(path)
                or os.path.realpath(path) != os.path.join(root, experiment_id, name)):
            raise RunError('{} is not an experiment of this repository (no {} in {})'.format(
                experiment_id, name, folder))
    return folder


def parse_net(spec):
    """(experiment id, class name) of a net spec ``<id>/net.py:<Class>``; RunError otherwise."""
    match = NET_SPEC.fullmatch(spec) if isinstance(spec, str) else None
    if not match or not EXPERIMENT_ID.fullmatch(match.group('experiment')):
        raise RunError('net {} is not of the form <experiment>/net.py:<Class>'.format(
            _short(spec)))
    return match.group('experiment'), match.group('name')


def import_experiment_file(folder, name='net'):
    """``<folder>/<name>.py`` of an experiment folder (scripts, not a package) as a module named
    ``<folder name>_<name>``, with the folder first on sys.path while it runs, as when train.py
    runs as a script: its ``from net import Net`` finds the net of its own folder."""
    folder = os.path.abspath(folder)
    spec = importlib.util.spec_from_file_location(
        '{}_{}'.format(os.path.basename(folder), name), os.path.join(folder, name + '.py'))
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, folder)
    sys.modules.pop('net', None)  # another experiment's net.py, imported before
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(folder)
        sys.modules.pop('net', None)
    return module


def net_class(spec):
    """The AutoEncoder class named by ``experiment/net.py:Class``: only an experiment folder of
    this repository (:func:`experiment_folder`) is imported, and only after every check."""
    experiment, class_name = parse_net(spec)
    try:
        folder = experiment_folder(experiment)
    except RunError as e:
        raise RunError('net "{}": {}'.format(spec, e))
    module = import_experiment_file(folder, 'net')
    found = getattr(module, class_name, None)
    # The net's own class: not a name net.py imports (AutoEncoder itself, the base of every
    # net, has no layers).
    if not (isinstance(found, type) and issubclass(found, AutoEncoder)
            and found.__module__ == module.__name__):
        raise RunError('net "{}": {} defines no AutoEncoder class {}'.format(
            spec, module.__file__, class_name))
    return found


def load_model(folder, device=None):
    """(net with model.npz loaded, in test mode use, on ``device``; summary) of a finished run.

    model.npz is read by :func:`common.npz.load_npz`: never unpickled, every entry checked
    against the net."""
    summary = load_summary(folder)
    path = os.path.join(folder, 'model.npz')
    if not os.path.lexists(path):
        raise RunError('{}: no model.npz (the run did not finish)'.format(folder))
    net = net_class(summary['net'])()
    try:
        npz.load_npz(path, net, what=summary['net'])
    except npz.NpzError as e:
        raise RunError(str(e))
    if device is not None:
        net.to_device(device)
    return net, summary
