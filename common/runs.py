"""Finished results folders: their summary.json, their log and their trained network.

A finished run is a folder written by an experiment's train.py to the end: it holds
``summary.json`` (which names the experiment's net, e.g. ``bc7db4a2/net.py:Net``), ``log``
and ``model.npz``.  Tools that use a trained model (evaluate, reconstruct, latent, report,
compare) need nothing but that folder.
"""
import importlib.util
import json
import os

import common  # noqa: F401
import chainer

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class RunError(Exception):
    """A folder that is not a finished run, or a model that does not fit: one-line message."""


def load_summary(folder):
    """summary.json of a finished run, as a dict; RunError names what is missing."""
    if not os.path.isdir(folder):
        raise RunError('{}: no such results folder'.format(folder))
    path = os.path.join(folder, 'summary.json')
    if not os.path.isfile(path):
        raise RunError('{}: not a finished run (no summary.json; train it to the end, or '
                       'resume it with --resume)'.format(folder))
    try:
        with open(path) as f:
            summary = json.load(f)
    except (OSError, ValueError) as e:
        raise RunError('{}: unreadable summary.json ({})'.format(folder, e))
    for key in ('experiment', 'net', 'parameters'):
        if key not in summary:
            raise RunError('{}: summary.json has no "{}"'.format(folder, key))
    return summary


def load_log(folder):
    """Chainer's LogReport entries of a run (a list of dicts)."""
    path = os.path.join(folder, 'log')
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise RunError('{}: unreadable log ({})'.format(path, e))


def net_class(spec):
    """The Chain class named by ``experiment/net.py:Class`` (relative to the repository)."""
    try:
        relative, class_name = spec.split(':')
    except ValueError:
        raise RunError('net "{}" is not of the form experiment/net.py:Class'.format(spec))
    path = os.path.join(REPOSITORY, relative)
    if not os.path.isfile(path):
        raise RunError('net "{}": {} does not exist in this repository'.format(spec, path))
    name = relative.replace('/', '_').replace('.py', '')
    module_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    try:
        return getattr(module, class_name)
    except AttributeError:
        raise RunError('net "{}": {} has no class {}'.format(spec, path, class_name))


def load_model(folder, device=None):
    """(net with model.npz loaded, in test mode use, on ``device``; summary) of a finished run."""
    summary = load_summary(folder)
    path = os.path.join(folder, 'model.npz')
    if not os.path.isfile(path):
        raise RunError('{}: no model.npz (the run did not finish)'.format(folder))
    net = net_class(summary['net'])()
    try:
        chainer.serializers.load_npz(path, net)
    except (KeyError, ValueError, OSError) as e:
        raise RunError('{}: model.npz does not fit {} ({}: {})'.format(
            folder, summary['net'], type(e).__name__, e))
    if device is not None:
        net.to_device(device)
    return net, summary
