"""The prior experiment c9335bce: its boxes against bc7db4a2's, its defaults, a tiny run of it.

Shapes, parameter count and latent range of its net are in test_nets.py."""
import json

import numpy
import pytest

import common  # noqa: F401

from conftest import load_experiment_module, run_experiment
from common import inference, runs

PARAMETERS = 3323649


@pytest.fixture(scope='module')
def net_class():
    return load_experiment_module('c9335bce').Net


def test_outer_boxes_are_bc7db4a2s(net_class, bc7db4a2_net):
    # SPEC: "Same enc1-enc5 and dec5-dec1 as above".
    assert net_class.ENCODER[:5] == bc7db4a2_net.ENCODER[:5]
    assert net_class.DECODER[-5:] == bc7db4a2_net.DECODER[-5:]
    assert net_class.ENCODER[-1].activation == 'tanh'
    assert [box.name for box in net_class.DECODER[:2]] == ['dec7', 'dec6']
    assert net_class.DECODER[1].op == 'deconv' and net_class.DECODER[1].ksize == (1, 8)


def test_train_py_defaults_are_the_record_and_the_shared_protocol():
    result = run_experiment('c9335bce', '--help', timeout=120)
    assert result.returncode == 0, result.stderr
    text = ' '.join(result.stdout.split())
    assert 'Experiment c9335bce' in text
    assert 'minibatch size (record: 100)' in text
    assert 'number of epochs (record: 200)' in text
    assert 'learning rate (record: 1e-05)' in text
    from common import protocol
    for flag in ('excerpts_per_epoch', 'validation_excerpts'):  # help shows these defaults
        assert '(default: {})'.format(protocol.UNRECORDED[flag]) in text, flag


def test_a_tiny_run_finishes_with_its_summary_model_and_page(c9335bce_run):
    with open(c9335bce_run / 'summary.json') as f:
        summary = json.load(f)
    assert summary['experiment'] == 'c9335bce' and summary['net'] == 'c9335bce/net.py:Net'
    assert summary['parameters'] == PARAMETERS
    assert summary['latent_shape'] == [1024, 16, 9]
    assert summary['hyperparameters']['batchsize'] == 2
    assert numpy.isfinite(summary['final_validation_mse'])
    for name in ('loss.png', 'index.html', 'utterance/output.wav'):
        assert (c9335bce_run / name).is_file(), name
    net, _ = runs.load_model(str(c9335bce_run))
    output = inference.autoencode(net, numpy.full((40, 256), 3.0, numpy.float32))
    assert output.shape == (40, 256) and numpy.isfinite(output).all()
