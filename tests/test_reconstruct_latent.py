"""common.reconstruct and common.latent on a finished tiny bc7db4a2 run."""
import io
import os
import shutil
import subprocess
import struct
import sys
import zipfile
import zlib

import numpy
import pytest
import soundfile

import common  # noqa: F401
import chainer

from common import audio, latent, reconstruct
from common import spectrogram as sp
from common.autoencoder import AutoEncoder, Box
from test_npz import Payload

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope='module')
def utterance_path():
    import pysptk.util
    return pysptk.util.example_audio_file()


def python_m(*args):
    return subprocess.run([sys.executable, '-m'] + list(args), capture_output=True, text=True,
                          cwd=REPOSITORY, timeout=300)


def samples(path):
    wave, rate = soundfile.read(str(path), dtype='int16')
    assert rate == sp.SAMPLE_RATE
    return wave


@pytest.fixture(scope='module')
def reconstructed(bc7db4a2_run, utterance_path, tmp_path_factory):
    """`python -m common.reconstruct` of the pysptk utterance, as a user runs it."""
    out = tmp_path_factory.mktemp('reconstruct') / 'a0007.wav'
    result = python_m('common.reconstruct', str(bc7db4a2_run), utterance_path, str(out))
    assert result.returncode == 0, result.stderr
    return out


def test_reconstruct_keeps_the_length(reconstructed, utterance_path):
    original = audio.load(utterance_path)
    wave = samples(reconstructed)
    assert len(wave) == len(original)  # 64000 samples of a0007
    covered = sp.wave_length(sp.n_frames(len(original)))
    assert len(original) - covered < sp.HOP_LENGTH  # frames cover all but less than one hop
    assert not wave[covered:].any()  # the uncovered tail is silence
    assert numpy.abs(wave[:covered]).max() > 0


def test_reconstruct_any_length_rate_and_format(bc7db4a2_run, utterance_path, tmp_path, capsys):
    """A FLAC at 22050 Hz of an odd length: the output has the 16 kHz length of the input."""
    original = audio.load(utterance_path)[:20001]
    path = tmp_path / 'odd.flac'
    soundfile.write(str(path), _to_rate(original, 22050), 22050, subtype='PCM_24')
    out = tmp_path / 'odd.wav'
    status = reconstruct.main([str(bc7db4a2_run), str(path), str(out),
                               '--griffin-lim-iterations', '5'])
    assert status == 0, capsys.readouterr().err
    expected = len(audio.load(path))
    assert len(samples(out)) == expected
    assert expected - sp.wave_length(sp.n_frames(expected)) < sp.HOP_LENGTH


def _to_rate(wave, rate):
    import scipy.signal
    return scipy.signal.resample_poly(wave, rate // 50, sp.SAMPLE_RATE // 50)


def test_encode_then_decode_equals_reconstruct(bc7db4a2_run, utterance_path, reconstructed,
                                               tmp_path, capsys):
    npz = tmp_path / 'a0007.npz'
    assert latent.main(['encode', str(bc7db4a2_run), utterance_path, str(npz)]) == 0
    with numpy.load(npz) as stored:
        assert stored['latents'].shape == (4, 4096, 16, 1)  # 124 frames: 4 blocks
        assert stored['latents'].dtype == numpy.float32
        assert numpy.abs(stored['latents']).max() <= 1  # tanh
        assert int(stored['frames']) == 124
        assert int(stored['samples']) == 64000
        assert int(stored['sample_rate']) == 16000
        assert str(stored['experiment']) == 'bc7db4a2'
        assert str(stored['net']) == 'bc7db4a2/net.py:Net'
        assert stored['latent_shape'].tolist() == [4096, 16, 1]
    out = tmp_path / 'decoded.wav'
    assert latent.main(['decode', str(bc7db4a2_run), str(npz), str(out)]) == 0
    numpy.testing.assert_array_equal(samples(out), samples(reconstructed))
    capsys.readouterr()


# -- bad inputs: one line 'prog: error: ...', exit status 2 ------------------------------------

class OtherNet(AutoEncoder):
    """c9335bce's table (SPEC.md): a model file of another experiment."""
    ENCODER = (
        Box('enc1', 'conv', 32, 7, 1, 3, 'leaky_relu'),
        Box('enc2', 'conv', 64, 4, 2, 1, 'leaky_relu'),
        Box('enc3', 'conv', 64, (1, 4), (1, 2), (0, 1), 'leaky_relu'),
        Box('enc4', 'conv', 64, (1, 4), (1, 2), (0, 1), 'leaky_relu'),
        Box('enc5', 'conv', 64, (1, 4), (1, 2), (0, 1), 'leaky_relu'),
        Box('enc6', 'conv', 1024, (1, 8), 1, 0, 'leaky_relu'),
        Box('enc7', 'conv', 1024, 1, 1, 0, 'tanh'),
    )
    DECODER = (
        Box('dec7', 'conv', 1024, 1, 1, 0, 'leaky_relu'),
        Box('dec6', 'deconv', 64, (1, 8), 1, 0, 'leaky_relu'),
        Box('dec5', 'deconv', 64, (1, 4), (1, 2), (0, 1), 'leaky_relu'),
        Box('dec4', 'deconv', 64, (1, 4), (1, 2), (0, 1), 'leaky_relu'),
        Box('dec3', 'deconv', 64, (1, 4), (1, 2), (0, 1), 'leaky_relu'),
        Box('dec2', 'deconv', 32, 4, 2, 1, 'leaky_relu'),
        Box('dec1', 'conv', 1, 7, 1, 3, 'softplus', False),
    )


@pytest.fixture(scope='module')
def bad(bc7db4a2_run, utterance_path, tmp_path_factory):
    """A folder of bad inputs, and a good latent file."""
    root = tmp_path_factory.mktemp('bad')
    rng = numpy.random.default_rng(0)
    soundfile.write(str(root / 'short.wav'), 0.1 * rng.standard_normal(1000), 16000)
    soundfile.write(str(root / 'zeros.wav'), numpy.zeros(20000), 16000)
    soundfile.write(str(root / 'hiss.wav'), rng.integers(-1, 2, 20000).astype(numpy.int16), 16000)
    (root / 'text.wav').write_text('not audio')
    (root / 'nomodel').mkdir()
    shutil.copy(bc7db4a2_run / 'summary.json', root / 'nomodel')
    (root / 'other').mkdir()  # bc7db4a2's summary, c9335bce's model
    shutil.copy(bc7db4a2_run / 'summary.json', root / 'other')
    chainer.serializers.save_npz(str(root / 'other' / 'model.npz'), OtherNet())
    (root / 'unfinished').mkdir()
    # model.npz files a run could hand over: empty, truncated, one with pickled entries.
    for name in ('empty', 'truncated', 'pickled'):
        (root / name).mkdir()
        shutil.copy(bc7db4a2_run / 'summary.json', root / name)
    (root / 'empty' / 'model.npz').write_bytes(b'')
    with open(bc7db4a2_run / 'model.npz', 'rb') as f:
        (root / 'truncated' / 'model.npz').write_bytes(f.read(2 ** 20))
    with zipfile.ZipFile(bc7db4a2_run / 'model.npz') as model:
        names = [name[:-len('.npy')] for name in model.namelist()]
    numpy.savez(root / 'pickled' / 'model.npz',  # every entry: Chain children are a set
                **{name: numpy.array([Payload(root / 'marker')], dtype=object)
                   for name in names})
    good = root / 'good.npz'
    assert latent.main(['encode', str(bc7db4a2_run), utterance_path, str(good)]) == 0
    content = dict(numpy.load(good))
    for name, change in [
            ('narrow', {'latents': content['latents'][:, :1024]}),
            ('c9335bce', {'experiment': numpy.array('c9335bce'),
                          'net': numpy.array('c9335bce/net.py:Net')}),
            ('blocks', {'latents': content['latents'][:3]}),
            ('nan', {'latents': content['latents'] * numpy.nan}),
            ('frames', {'frames': numpy.array([124, 1])})]:
        numpy.savez(root / (name + '.npz'), **dict(content, **change))
    for name, change in [  # what a file from elsewhere may hold instead
            ('pickled', {'latents': numpy.array([Payload(root / 'marker')], dtype=object)}),
            ('overflow', {'latents': content['latents'].astype(numpy.float64) * 1e300}),
            ('scalar', {'latents': numpy.float32(0.5)}),
            ('integers', {'latents': content['latents'].astype(numpy.int64)}),
            ('text', {'frames': numpy.array('124')}),
            ('long', {'net': numpy.array('x' * 10000)})]:
        numpy.savez(root / (name + '.npz'), **dict(content, **change))
    bomb(root / 'bomb.npz', content)
    numpy.savez(root / 'partial.npz', latents=content['latents'])
    numpy.save(root / 'array.npy', content['latents'])
    return root


MODEL_CASES = {
    'empty model': ('empty', 'UTTERANCE', 'model.npz: not a model (empty file)'),
    'truncated model': ('truncated', 'UTTERANCE', 'model.npz: not a model (not an .npz archive, '
                        'or truncated'),
    'pickled model': ('pickled', 'UTTERANCE', 'is an object array, which only pickle can read'),
}
def deflated_zeros(path, name, header, zero_bytes, chunk=2 ** 20):
    """A zip of one deflated member, ``header`` then ``zero_bytes`` zeros (a multiple of
    ``chunk``): every full-flushed chunk of zeros deflates to the same bytes, so gigabytes cost
    a few megabytes on disk and seconds to write."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    start = compressor.compress(header) + compressor.flush(zlib.Z_FULL_FLUSH)
    piece = compressor.compress(bytes(chunk)) + compressor.flush(zlib.Z_FULL_FLUSH)
    end = compressor.flush()
    count = zero_bytes // chunk
    crc = zlib.crc32(header)
    for _ in range(count):
        crc = zlib.crc32(bytes(chunk), crc)
    sizes = (crc, len(start) + count * len(piece) + len(end), len(header) + zero_bytes)
    encoded = name.encode()
    local = struct.pack('<IHHHHHIIIHH', 0x04034b50, 20, 0, 8, 0, 0x21, *sizes, len(encoded),
                        0) + encoded
    central = struct.pack('<IHHHHHHIIIHHHHHII', 0x02014b50, 20, 20, 0, 8, 0, 0x21, *sizes,
                          len(encoded), 0, 0, 0, 0, 0, 0) + encoded
    with open(path, 'wb') as f:
        f.write(local + start)
        for _ in range(count):
            f.write(piece)
        f.write(end)
        offset = f.tell()
        f.write(central)
        f.write(struct.pack('<IHHHHIIH', 0x06054b50, 0, 0, 1, 1, len(central), offset, 0))


def bomb(path, content, blocks=12000):
    """A latent file of 3 MB whose latents declare 12000 blocks (3 GB of float32 zeros)."""
    shape = (blocks,) + content['latents'].shape[1:]
    header = io.BytesIO()
    numpy.lib.format.write_array_header_1_0(
        header, {'descr': '<f4', 'fortran_order': False, 'shape': shape})
    deflated_zeros(path, 'latents.npy', header.getvalue(), int(numpy.prod(shape)) * 4)
    with zipfile.ZipFile(path, 'a') as archive:  # and the other entries, as encode writes them
        for key, value in content.items():
            if key != 'latents':
                stream = io.BytesIO()
                numpy.lib.format.write_array(stream, numpy.asarray(value))
                archive.writestr(key + '.npy', stream.getvalue())


RECONSTRUCT_CASES = {
    # case: (results folder, input, message part)
    'too short': ('RUN', 'short.wav', 'too short: 1000 samples'),
    'all zeros': ('RUN', 'zeros.wav', 'all-silent'),
    'silent hiss': ('RUN', 'hiss.wav', 'silent (peak'),
    'not audio': ('RUN', 'text.wav', 'not readable as audio'),
    'missing input': ('RUN', 'missing.wav', 'cannot open'),
    'no model': ('nomodel', 'UTTERANCE', 'no model.npz'),
    'model of another experiment': ('other', 'UTTERANCE', 'model.npz: does not fit '
                                    'bc7db4a2/net.py:Net: '),
    'not a run': ('unfinished', 'UTTERANCE', 'not a finished run'),
    'no folder': ('absent', 'UTTERANCE', 'no such results folder'),
    **MODEL_CASES,
}


def _path(bad, run, utterance_path, name):
    return {'RUN': str(run), 'UTTERANCE': utterance_path}.get(name, str(bad / name))


def assert_one_line_error(capsys, prog, message):
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(prog + ': error: '), err
    assert message in lines[0]


DECODE_CASES = {
    'latents of the wrong shape': ('RUN', 'narrow.npz', 'latents of shape (4, 1024, 16, 1)'),
    'latents of another experiment': ('RUN', 'c9335bce.npz', 'latents of experiment c9335bce'),
    'blocks do not match frames': ('RUN', 'blocks.npz', '3 latent blocks for 124 frames'),
    'non-finite latents': ('RUN', 'nan.npz', 'NaN'),
    'frames not one integer': ('RUN', 'frames.npz', 'frames must be one integer'),
    'keys missing': ('RUN', 'partial.npz', 'not a latent file'),
    'pickled latents': ('RUN', 'pickled.npz', "entry 'latents' is an object array"),
    'latents beyond float32': ('RUN', 'overflow.npz', 'beyond the range of float32'),
    'latents one number': ('RUN', 'scalar.npz', 'latents are float32 (); common.latent encode '
                           'writes floating point (blocks, *latent shape)'),
    'latents integers': ('RUN', 'integers.npz', 'latents are int64 (4, 4096, 16, 1)'),
    'frames a string': ('RUN', 'text.npz', 'frames must be one integer, got <U3'),
    'a long net': ('RUN', 'long.npz', 'net is <U10000 (), not a short string'),
    'a small file declaring 3 GB': ('RUN', 'bomb.npz', 'latents of shape (12000, 4096, 16, 1) '
                                    '(3145728000 bytes): more than 1 h of audio'),
    'a .npy array': ('RUN', 'array.npy', 'not a latent file'),
    'not an npz': ('RUN', 'text.wav', 'not a latent file'),
    'missing file': ('RUN', 'absent.npz', 'cannot open'),
    'no model': ('nomodel', 'good.npz', 'no model.npz'),
    'model of another experiment': ('other', 'good.npz', 'model.npz: does not fit '
                                    'bc7db4a2/net.py:Net: '),
    **{case: (folder, 'good.npz', message) for case, (folder, _, message) in MODEL_CASES.items()},
}


# Each tool: (its main, its argv before the three paths, its program name, the output file it
# must not leave behind, its bad-input cases).
TOOLS = {
    'reconstruct': (reconstruct.main, [], 'python -m common.reconstruct', 'out.wav',
                    RECONSTRUCT_CASES),
    'encode': (latent.main, ['encode'], 'python -m common.latent', 'out.npz', RECONSTRUCT_CASES),
    'decode': (latent.main, ['decode'], 'python -m common.latent', 'out.wav', DECODE_CASES),
}


@pytest.mark.parametrize('tool, case', [(tool, case) for tool, (*_, cases) in TOOLS.items()
                                        for case in sorted(cases)])
def test_bad_input_is_a_one_line_error(tool, case, bad, bc7db4a2_run, utterance_path, capsys):
    main, command, prog, output, cases = TOOLS[tool]
    folder, name, message = cases[case]
    status = main(command + [_path(bad, bc7db4a2_run, utterance_path, folder),
                             _path(bad, bc7db4a2_run, utterance_path, name), str(bad / output)])
    assert status == 2
    assert_one_line_error(capsys, prog, message)
    assert not (bad / output).exists()
    assert not (bad / 'marker').exists()


def test_unwritable_output_fails_before_the_work(bc7db4a2_run, utterance_path, tmp_path,
                                                 capsys):
    status = reconstruct.main([str(bc7db4a2_run), utterance_path,
                               str(tmp_path / 'absent' / 'out.wav')])
    assert status == 2
    assert_one_line_error(capsys, 'python -m common.reconstruct', 'cannot write')


def test_command_line_errors_have_no_traceback(bad):
    """As a user sees them: `python -m`, stderr one line, exit status 2."""
    result = python_m('common.reconstruct', str(bad / 'nomodel'), str(bad / 'short.wav'),
                      str(bad / 'out.wav'))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        'python -m common.reconstruct: error: %s: too short: 1000 samples at 16 kHz (62.5 ms); '
        'a spectrogram frame needs 1024' % (bad / 'short.wav')]
    result = python_m('common.latent', 'decode', str(bad / 'other'), str(bad / 'narrow.npz'),
                      str(bad / 'out.wav'))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('python -m common.latent: error: ')


def test_a_small_latent_file_declaring_gigabytes_is_refused_before_reading(bad, tmp_path):
    """A 3 MB file that declares 3 GB of latents: refused from its header, nothing allocated
    (the 10 MB file of the issue declared 40,000 blocks and reached 12.9 GB)."""
    import tracemalloc
    assert (bad / 'bomb.npz').stat().st_size < 4 * 2 ** 20
    tracemalloc.start()
    try:
        with pytest.raises(reconstruct.ToolError, match='more than 1 h of audio'):
            latent.load(str(bad / 'bomb.npz'))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 ** 20


def test_encode_refuses_what_decode_would_refuse(bc7db4a2_run, utterance_path, tmp_path,
                                                 monkeypatch, capsys):
    """Latent files hold at most MAX_SECONDS of audio; encode says so before the work."""
    monkeypatch.setattr(latent, 'MAX_SECONDS', 2)
    out = tmp_path / 'out.npz'
    assert latent.main(['encode', str(bc7db4a2_run), utterance_path, str(out)]) == 2
    assert_one_line_error(capsys, 'python -m common.latent',
                          '4 s of audio; a latent file holds at most 2 s (cut the recording)')
    assert not out.exists()
