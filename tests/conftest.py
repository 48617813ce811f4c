"""Shared fixtures: experiment nets loaded by path (experiment folders are scripts, not packages)."""
import importlib.util
import os

import pytest

import common  # noqa: F401  (Chainer compatibility before anything imports chainer)

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_experiment_module(experiment_id, name='net'):
    path = os.path.join(REPOSITORY, experiment_id, name + '.py')
    spec = importlib.util.spec_from_file_location('{}_{}'.format(experiment_id, name), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='session')
def bc7db4a2_net():
    return load_experiment_module('bc7db4a2').Net
