"""The prior experiment c9335bce against SPEC.md ("Model c9335bce"), and a tiny run of it."""
import json

import numpy
import pytest

import common  # noqa: F401
import chainer

from conftest import load_experiment_module, run_experiment
from common import inference, runs

# Box by box (C, T, F): enc1-enc5 and dec5-dec1 as bc7db4a2, the latent 1024 x 16 x 9.
SHAPES = [
    ('enc1', (32, 32, 256)), ('enc2', (64, 16, 128)), ('enc3', (64, 16, 64)),
    ('enc4', (64, 16, 32)), ('enc5', (64, 16, 16)), ('enc6', (1024, 16, 9)),
    ('enc7', (1024, 16, 9)),
    ('dec7', (1024, 16, 9)), ('dec6', (64, 16, 16)), ('dec5', (64, 16, 32)),
    ('dec4', (64, 16, 64)), ('dec3', (64, 16, 128)), ('dec2', (32, 32, 256)),
    ('dec1', (1, 32, 256)),
]
PARAMETERS = 3323649


@pytest.fixture(scope='module')
def net_class():
    return load_experiment_module('c9335bce').Net


@pytest.fixture(scope='module')
def net(net_class):
    numpy.random.seed(0)
    return net_class()


@pytest.fixture(scope='module')
def batch():
    return numpy.random.RandomState(1).uniform(0, numpy.log(1000), (2, 1, 32, 256)).astype('f')


def test_shapes_after_every_box_match_spec(net, batch):
    shapes = []
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        h = batch
        for block in net.encoder[:-1]:
            h = block(h)
            shapes.append((block.name, h.shape[1:]))
        z = net.encoder[-1].activate(h)
        shapes.append((net.encoder[-1].name, z.shape[1:]))
        h = net.encoder[-1].normalize(z)
        for block in net.decoder:
            h = block(h)
            shapes.append((block.name, h.shape[1:]))
    assert shapes == SHAPES


def test_parameter_count_matches_spec(net):
    assert net.count_params() == PARAMETERS
    expected = 0
    in_channels = 1
    for box in net.ENCODER + net.DECODER:
        kh, kw = box.ksize if isinstance(box.ksize, tuple) else (box.ksize, box.ksize)
        expected += in_channels * box.out_channels * kh * kw + box.out_channels
        expected += 2 * box.out_channels if box.batch_norm else 0
        in_channels = box.out_channels
    assert expected == PARAMETERS


def test_outer_boxes_are_bc7db4a2s(net_class, bc7db4a2_net):
    # SPEC: "Same enc1-enc5 and dec5-dec1 as above".
    assert net_class.ENCODER[:5] == bc7db4a2_net.ENCODER[:5]
    assert net_class.DECODER[-5:] == bc7db4a2_net.DECODER[-5:]
    assert net_class.ENCODER[-1].activation == 'tanh'
    assert [box.name for box in net_class.DECODER[:2]] == ['dec7', 'dec6']
    assert net_class.DECODER[1].op == 'deconv' and net_class.DECODER[1].ksize == (1, 8)


def test_latent_in_open_interval_and_output_positive(net, batch):
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        z = net.encode(batch * 3)
        y = net.decode(z)
    assert z.shape == (2, 1024, 16, 9)
    assert float(abs(z.array).max()) < 1
    assert y.shape == (2, 1, 32, 256) and float(y.array.min()) > 0


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
