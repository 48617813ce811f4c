"""common.npz: model files and trainer snapshots are read as data, never unpickled.

Real archives throughout: a small AutoEncoder saved by Chainer, the same file tampered with
(a pickled entry, truncated, forged headers), and a real trainer snapshot written by the
snapshot extension of an experiment's train.py.
"""
import inspect
import io
import os
import zipfile

import numpy
import pytest

import common  # noqa: F401
import chainer

from conftest import load_experiment_module
from common import dataset, npz
from common import extensions as ext
from common.autoencoder import AutoEncoder, Box


class SmallNet(AutoEncoder):
    """Two boxes each way: every kind of entry a real net has (W, b, gamma, beta, avg_*, N)."""
    ENCODER = (Box('enc1', 'conv', 4, 3, 1, 1, 'leaky_relu'),
               Box('enc2', 'conv', 2, (1, 4), (1, 2), (0, 1), 'tanh'))
    DECODER = (Box('dec2', 'deconv', 4, (1, 4), (1, 2), (0, 1), 'leaky_relu'),
               Box('dec1', 'conv', 1, 3, 1, 1, 'softplus', False))


class Payload:
    """Unpickling this creates ``marker``: the visible trace of code run from a file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, 'w'))


def entries(net):
    return chainer.serializers.npz.serialize(net)


def save(path, content):
    numpy.savez(str(path), **content)
    return path


@pytest.fixture
def model(tmp_path):
    numpy.random.seed(0)
    net = SmallNet()
    path = tmp_path / 'model.npz'
    chainer.serializers.save_npz(str(path), net, compression=False)
    return path, net


def test_a_model_loads_exactly_as_chainer_loads_it(model):
    path, saved = model
    loaded = SmallNet()
    npz.load_npz(str(path), loaded)
    for name, value in entries(saved).items():
        numpy.testing.assert_array_equal(entries(loaded)[name], value, err_msg=name)


def test_a_pickled_entry_is_refused_and_never_run(model, tmp_path):
    path, net = model
    marker = tmp_path / 'marker'
    content = entries(net)
    content['enc1/conv/W'] = numpy.array([Payload(marker)], dtype=object)
    save(path, content)
    # The payload is live: Chainer's own loader runs it.
    with pytest.raises(Exception):
        chainer.serializers.load_npz(str(path), SmallNet())
    assert marker.exists()
    marker.unlink()
    with pytest.raises(npz.NpzError) as error:
        npz.load_npz(str(path), SmallNet(), what='SmallNet')
    message = str(error.value)
    assert not marker.exists()
    assert '\n' not in message and message.startswith(str(path) + ': ')
    assert "'enc1/conv/W' is an object array, which only pickle can read" in message


def forged_npy(shape, data):
    """An .npy member whose header declares ``shape`` float32 but which holds ``data``."""
    stream = io.BytesIO()
    numpy.lib.format.write_array_header_1_0(
        stream, {'descr': '<f4', 'fortran_order': False, 'shape': shape})
    return stream.getvalue() + data


def tamper(path, net, case, tmp_path):
    """Write ``path`` as the tampered model of ``case``; returns the expected message part."""
    content = entries(net)
    good = path.read_bytes()
    if case == 'empty':
        path.write_bytes(b'')
        return 'not a model (empty file)'
    if case == 'truncated':
        path.write_bytes(good[:len(good) // 2])
        return 'not a model (not an .npz archive, or truncated'
    if case == 'text':
        path.write_text('not a model')
        return 'not an .npz archive'
    if case == 'npy':
        numpy.save(str(tmp_path / 'array.npy'), content['enc1/conv/W'])
        os.replace(tmp_path / 'array.npy', path)
        return 'not an .npz archive'
    if case == 'missing entry':
        del content['dec1/conv/b']
        save(path, content)
        return "does not fit SmallNet: no entry 'dec1/conv/b'"
    if case == 'wrong shape':
        content['enc1/conv/W'] = content['enc1/conv/W'][:1]  # would broadcast into place
        save(path, content)
        return "does not fit SmallNet: entry 'enc1/conv/W' has shape (1, 1, 3, 3), not (4, 1, 3, 3)"
    if case == 'integers':
        content['enc2/bn/gamma'] = numpy.ones(2, dtype=numpy.int64)
        save(path, content)
        return "does not fit SmallNet: entry 'enc2/bn/gamma' is int64, not floating point"
    if case == 'forged header':  # declares 4 TB, holds 16 bytes: must not be allocated
        del content['enc1/conv/W']
        save(path, content)
        with zipfile.ZipFile(str(path), 'a') as archive:
            archive.writestr('enc1/conv/W.npy', forged_npy((10 ** 12,), b'\0' * 16))
        return 'declares float32 (1000000000000,) (4000000000000 bytes) but holds 16 bytes'
    if case == 'folder':
        path.unlink()
        path.mkdir()
        return 'not a regular file'
    if case == 'fifo':
        path.unlink()
        os.mkfifo(str(path))
        return 'not a regular file'
    raise AssertionError(case)


BAD_MODELS = ['empty', 'truncated', 'text', 'npy', 'missing entry', 'wrong shape', 'integers',
              'forged header', 'folder', 'fifo']


@pytest.mark.parametrize('case', BAD_MODELS)
def test_a_bad_model_file_is_one_line_naming_file_and_reason(case, model, tmp_path):
    path, net = model
    expected = tamper(path, net, case, tmp_path)
    with pytest.raises(npz.NpzError) as error:
        npz.load_npz(str(path), SmallNet())
    message = str(error.value)
    assert '\n' not in message and message.startswith(str(path) + ': '), message
    assert expected in message


def test_entries_are_read_only_after_their_header_is_checked(model):
    path, _ = model
    with npz.Archive(str(path), 'model') as archive:
        header = archive.header('enc1/conv/W')
        assert (header.shape, header.dtype, header.nbytes) == ((4, 1, 3, 3), 'float32', 144)
        assert archive.read('enc1/conv/W').shape == (4, 1, 3, 3)
        with pytest.raises(npz.NpzError, match='more than the 100 allowed'):
            archive.read('enc1/conv/W', max_bytes=100)


# -- trainer snapshots (what --resume loads) --------------------------------------------------

@pytest.fixture(scope='module')
def corpus():
    return dataset.load_corpus(dataset.DEMO_CORPUS, log=lambda message: None)


def make_trainer(corpus, out):
    train = load_experiment_module('c9335bce', 'train')
    args = train.parse_args(['--out', str(out), '--epoch', '1', '--batchsize', '2',
                             '--excerpts-per-epoch', '2', '--validation-excerpts', '2'])
    # Where train.py names the run in its snapshots (a string, as its main passes), name it:
    # an entry left None would be a pickled None, which common.npz refuses like any pickle.
    named = 'run_id' in inspect.signature(train.make_trainer).parameters
    return train.make_trainer(args, corpus, chainer.get_device('@numpy'),
                              **({'run_id': 'a-run'} if named else {}))


def trainer_state(trainer):
    """Everything a snapshot restores: the updater (model, optimizer, iterators), the elapsed
    time and every extension's state and trigger."""
    serializer = chainer.serializers.DictionarySerializer()
    trainer.updater.serialize(serializer['updater'])
    for name, entry in trainer._extensions.items():
        if hasattr(entry.extension, 'serialize'):  # as Trainer.serialize: observe_lr has none
            entry.extension.serialize(serializer['extensions'][name])
        if hasattr(entry.trigger, 'serialize'):
            entry.trigger.serialize(serializer['extension_triggers'][name])
    serializer('elapsed_time', trainer._snapshot_elapsed_time)
    return serializer.target


def test_a_real_trainer_snapshot_loads_as_chainer_loads_it(corpus, tmp_path):
    trainer = make_trainer(corpus, tmp_path / 'run')
    trainer.run()  # one epoch of one iteration, then its snapshot
    snapshot = ext.snapshots(str(tmp_path / 'run'))[-1]
    with npz.Archive(snapshot, 'snapshot') as archive:
        headers = [archive.header(key) for key in archive.files]
    kinds = {header.dtype.kind for header in headers if header.shape == ()}
    assert {'i', 'f', 'b', 'U'} <= kinds  # counters, times, flags and the log as JSON text

    ours, chainers = make_trainer(corpus, tmp_path / 'a'), make_trainer(corpus, tmp_path / 'b')
    npz.load_npz(snapshot, ours, what='the trainer')
    chainer.serializers.load_npz(snapshot, chainers)
    assert ours.updater.iteration == 1 and ours.updater.epoch == 1
    assert ours.get_extension('LogReport').log == trainer.get_extension('LogReport').log
    expected = trainer_state(chainers)
    loaded = trainer_state(ours)
    assert sorted(loaded) == sorted(expected)
    for key, value in expected.items():
        assert type(loaded[key]) is type(value), key
        numpy.testing.assert_array_equal(loaded[key], value, err_msg=key)


def test_a_model_is_not_a_snapshot(corpus, model, tmp_path):
    path, _ = model
    with pytest.raises(npz.NpzError) as error:
        npz.load_npz(str(path), make_trainer(corpus, tmp_path / 'run'), what='the trainer')
    assert str(error.value).startswith(str(path) + ': does not fit the trainer: no entry ')



# -- zip members that zipfile cannot read: one line from every reader -------------------------

def _central_records(data):
    """(offset, name) of each central directory record of a zip's bytes."""
    records, position = [], data.find(b'PK\x01\x02')
    while position >= 0:
        name_length = int.from_bytes(data[position + 28:position + 30], 'little')
        records.append((position, bytes(data[position + 46:position + 46 + name_length])))
        position = data.find(b'PK\x01\x02', position + 46 + name_length)
    return records


def rezip(path, target, case):
    """Rewrite the .npz ``path`` with entry ``target`` made unreadable as ``case`` says:
    'encrypted' (zip's encryption flag), 'method 99' (a compression zipfile lacks: AES), or
    'corrupt lzma' / 'corrupt deflate' (compressed so, then bytes of its data flipped)."""
    with zipfile.ZipFile(str(path)) as archive:
        members = [(info.filename, archive.read(info)) for info in archive.infolist()]
    compression = {'corrupt lzma': zipfile.ZIP_LZMA,
                   'corrupt deflate': zipfile.ZIP_DEFLATED}.get(case, zipfile.ZIP_STORED)
    name = (target + '.npy').encode()
    with zipfile.ZipFile(str(path), 'w') as archive:
        for filename, content in members:
            archive.writestr(filename, content,
                             compress_type=compression if filename == name.decode()
                             else zipfile.ZIP_STORED)
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(str(path)) as archive:
        local = archive.getinfo(name.decode()).header_offset
    central = [offset for offset, found in _central_records(data) if found == name][0]
    if case == 'encrypted':
        for flags in (local + 6, central + 8):
            data[flags] |= 0x1
    elif case == 'method 99':
        for method in (local + 8, central + 10):
            data[method:method + 2] = (99).to_bytes(2, 'little')
    else:
        start = local + 30 + len(name) + int.from_bytes(data[local + 28:local + 30], 'little')
        for i in range(start + 4, start + 24):
            data[i] ^= 0x5A
    path.write_bytes(bytes(data))
    return path


UNREADABLE_MEMBERS = {
    'encrypted': 'is encrypted (zip encryption)',
    'method 99': 'uses zip compression method 99, which cannot be read',
    'corrupt lzma': 'is not a readable .npy array',
    'corrupt deflate': 'is not a readable .npy array',
}


def latent_file(path):
    numpy.savez(str(path), latents=numpy.zeros((1, 4, 16, 1), numpy.float32),
                frames=numpy.int64(32), samples=numpy.int64(16896),
                sample_rate=numpy.int64(16000), experiment=numpy.array('bc7db4a2'),
                net=numpy.array('bc7db4a2/net.py:Net'),
                latent_shape=numpy.array([4, 16, 1], numpy.int64), format=numpy.int64(1))
    return path


def snapshot_file(path):
    """What --resume reads first of a snapshot: its iteration and its run's identity."""
    with open(str(path), 'wb') as stream:  # numpy.savez would add '.npz' to the name
        numpy.savez(stream, **{'updater/iteration': numpy.int64(4),
                               'extensions/run/experiment': numpy.array('c9335bce'),
                               'extensions/run/run': numpy.array('a-run')})
    return path


@pytest.mark.parametrize('case', sorted(UNREADABLE_MEMBERS))
def test_a_member_zipfile_cannot_read_is_one_line_in_every_reader(case, model, tmp_path):
    """An encrypted member, one compressed with a method zipfile lacks, and corrupt LZMA data
    once raised RuntimeError, NotImplementedError and LZMAError through every reader: the model
    tools' (common.npz.load_npz), --resume's (results.snapshot_identity) and latent decode's."""
    from common import latent, results
    path, _ = model
    readers = {
        'model': (rezip(path, 'enc1/conv/W', case),
                  lambda file: npz.load_npz(str(file), SmallNet()), npz.NpzError),
        'snapshot': (rezip(snapshot_file(tmp_path / 'snapshot_iter_4'),
                           'extensions/run/experiment', case),
                     lambda file: results.snapshot_identity(str(file)), results.UsageError),
        'latent file': (rezip(latent_file(tmp_path / 'latents.npz'), 'latents', case),
                        lambda file: latent.load(str(file)), latent.tools.ToolError),
    }
    for what, (file, read, error_class) in readers.items():
        with pytest.raises(error_class) as error:
            read(file)
        message = str(error.value)
        assert '\n' not in message and message.startswith(str(file) + ': '), message
        assert UNREADABLE_MEMBERS[case] in message, (what, message)
