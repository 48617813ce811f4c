"""The bc7db4a2 network against the record's diagram (SPEC.md, "Model bc7db4a2")."""
import numpy
import pytest

import common  # noqa: F401
import chainer

# The diagram's output column, box by box (C, T, F).  Two arrows of the diagram are typos:
# enc7's says 1024 channels (the box has 4096) and dec2's says 64 (the box has 32).
DIAGRAM = [
    ('enc1', (32, 32, 256)), ('enc2', (64, 16, 128)), ('enc3', (64, 16, 64)),
    ('enc4', (64, 16, 32)), ('enc5', (64, 16, 16)), ('enc6', (1024, 16, 8)),
    ('enc7', (4096, 16, 1)), ('enc8', (4096, 16, 1)),
    ('dec8', (4096, 16, 1)), ('dec7', (1024, 16, 8)), ('dec6', (64, 16, 16)),
    ('dec5', (64, 16, 32)), ('dec4', (64, 16, 64)), ('dec3', (64, 16, 128)),
    ('dec2', (32, 32, 256)), ('dec1', (1, 32, 256)),
]


@pytest.fixture(scope='module')
def net(bc7db4a2_net):
    numpy.random.seed(0)
    return bc7db4a2_net()


@pytest.fixture(scope='module')
def batch():
    # Two spectrogram-like inputs in the record's range [0, ln 1000].
    return numpy.random.RandomState(1).uniform(0, numpy.log(1000), (2, 1, 32, 256)).astype('f')


def test_shapes_after_every_box_match_the_diagram(net, batch):
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
    assert shapes == DIAGRAM


def test_parameter_count_matches_spec(net):
    assert net.count_params() == 102054657
    # Independently: weights + biases of each convolution, gamma + beta of each BN.
    expected = 0
    in_channels = 1
    for box in net.ENCODER + net.DECODER:
        kh, kw = box.ksize if isinstance(box.ksize, tuple) else (box.ksize, box.ksize)
        expected += in_channels * box.out_channels * kh * kw + box.out_channels
        expected += 2 * box.out_channels if box.batch_norm else 0
        in_channels = box.out_channels
    assert expected == 102054657


def test_encode_gives_latent_in_open_interval(net, batch):
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        z = net.encode(batch * 3)  # also far outside the training range
        y = net.decode(z)
    assert z.shape == (2, 4096, 16, 1)
    assert float(abs(z.array).max()) < 1
    assert y.shape == (2, 1, 32, 256)
    assert float(y.array.min()) > 0  # softplus output


def test_forward_is_decode_of_encode_and_trains(net, batch):
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        numpy.testing.assert_allclose(net(batch).array, net.decode(net.encode(batch)).array,
                                      rtol=1e-6)
    loss = chainer.functions.mean_squared_error(net(batch), batch)
    net.cleargrads()
    loss.backward()
    assert all(param.grad is not None and numpy.isfinite(param.grad).all()
               for param in net.params())


def test_link_names_follow_the_boxes(net):
    names = {name for name, _ in net.namedparams()}
    assert '/enc1/conv/W' in names and '/enc8/bn/gamma' in names
    assert '/dec1/conv/b' in names and not any(n.startswith('/dec1/bn') for n in names)
