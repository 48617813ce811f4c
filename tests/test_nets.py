"""Each experiment's network against its record's diagram (SPEC.md, "Model bc7db4a2/c9335bce")."""
import os

import numpy
import pytest

import common  # noqa: F401
import chainer

from conftest import REPOSITORY, load_experiment_module

# The diagrams' output columns, box by box (C, T, F).  Two arrows of bc7db4a2's diagram are
# typos: enc7's says 1024 channels (the box has 4096) and dec2's says 64 (the box has 32).
OUTER_ENCODER = [('enc1', (32, 32, 256)), ('enc2', (64, 16, 128)), ('enc3', (64, 16, 64)),
                 ('enc4', (64, 16, 32)), ('enc5', (64, 16, 16))]
OUTER_DECODER = [('dec5', (64, 16, 32)), ('dec4', (64, 16, 64)), ('dec3', (64, 16, 128)),
                 ('dec2', (32, 32, 256)), ('dec1', (1, 32, 256))]
DIAGRAMS = {
    'bc7db4a2': OUTER_ENCODER + [
        ('enc6', (1024, 16, 8)), ('enc7', (4096, 16, 1)), ('enc8', (4096, 16, 1)),
        ('dec8', (4096, 16, 1)), ('dec7', (1024, 16, 8)), ('dec6', (64, 16, 16))
    ] + OUTER_DECODER,
    'c9335bce': OUTER_ENCODER + [
        ('enc6', (1024, 16, 9)), ('enc7', (1024, 16, 9)),
        ('dec7', (1024, 16, 9)), ('dec6', (64, 16, 16))
    ] + OUTER_DECODER,
}
PARAMETERS = {'bc7db4a2': 102054657, 'c9335bce': 3323649}
LATENT = {'bc7db4a2': (4096, 16, 1), 'c9335bce': (1024, 16, 9)}


@pytest.fixture(scope='module', params=sorted(DIAGRAMS))
def experiment(request):
    numpy.random.seed(0)
    return request.param, load_experiment_module(request.param).Net()


@pytest.fixture(scope='module')
def batch():
    # Two spectrogram-like inputs in the record's range [0, ln 1000].
    return numpy.random.RandomState(1).uniform(0, numpy.log(1000), (2, 1, 32, 256)).astype('f')


def test_shapes_after_every_box_match_the_diagram(experiment, batch):
    experiment_id, net = experiment
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        shapes = [(name, h.shape[1:]) for name, h in net.trace(batch)]
    assert shapes == DIAGRAMS[experiment_id]


def test_parameter_count_matches_spec(experiment):
    experiment_id, net = experiment
    assert net.count_params() == PARAMETERS[experiment_id]
    # Independently: weights + biases of each convolution, gamma + beta of each BN.
    expected = 0
    in_channels = 1
    for box in net.ENCODER + net.DECODER:
        kh, kw = box.ksize if isinstance(box.ksize, tuple) else (box.ksize, box.ksize)
        expected += in_channels * box.out_channels * kh * kw + box.out_channels
        expected += 2 * box.out_channels if box.batch_norm else 0
        in_channels = box.out_channels
    assert expected == PARAMETERS[experiment_id]


def test_encode_gives_latent_in_open_interval(experiment, batch):
    experiment_id, net = experiment
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        z = net.encode(batch * 3)  # also far outside the training range
        y = net.decode(z)
    assert z.shape == (2,) + LATENT[experiment_id]
    assert float(abs(z.array).max()) < 1
    assert y.shape == (2, 1, 32, 256)
    assert float(y.array.min()) > 0  # softplus output


def test_forward_is_decode_of_encode_and_trains(experiment, batch):
    _, net = experiment
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        numpy.testing.assert_allclose(net(batch).array, net.decode(net.encode(batch)).array,
                                      rtol=1e-6)
    loss = chainer.functions.mean_squared_error(net(batch), batch)
    net.cleargrads()
    loss.backward()
    assert all(param.grad is not None and numpy.isfinite(param.grad).all()
               for param in net.params())


def test_link_names_follow_the_boxes(experiment):
    _, net = experiment
    names = {name for name, _ in net.namedparams()}
    assert '/enc1/conv/W' in names and '/{}/bn/gamma'.format(net.ENCODER[-1].name) in names
    assert '/dec1/conv/b' in names and not any(n.startswith('/dec1/bn') for n in names)


def _written(value):
    """A Box field as the record writes it: 7, 1x4, 0x1."""
    return 'x'.join(str(v) for v in value) if isinstance(value, tuple) else str(value)


def test_the_readme_layer_table_is_the_net(bc7db4a2_net):
    with open(os.path.join(REPOSITORY, 'bc7db4a2', 'README.md')) as f:
        rows = [[cell.strip() for cell in line.strip().strip('|').split('|')]
                for line in f if line.startswith('| enc') or line.startswith('| dec')]
    boxes = bc7db4a2_net.ENCODER + bc7db4a2_net.DECODER
    assert [row[0] for row in rows] == [box.name for box in boxes]
    for row, box in zip(rows, boxes):
        op = {'conv': 'Convolution', 'deconv': 'Deconvolution'}[box.op]
        assert row[1:6] == [op, str(box.out_channels), _written(box.ksize),
                            _written(box.stride), _written(box.pad)], box.name
