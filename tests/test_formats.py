"""Which files every tool reads (issue 25, item 5), and recordings whose header claims more
audio than a tool may hold (D9): one rule, common/audio.py, for training, evaluate,
reconstruct and latent encode."""
import os
import tracemalloc

import numpy
import pytest
import soundfile

from common import audio, dataset, evaluate, latent, reconstruct


@pytest.fixture(scope='module')
def speech():
    import pysptk.util
    wave, rate = soundfile.read(pysptk.util.example_audio_file(), dtype='float32')
    assert rate == 16000
    return wave


def logged(function, *args, **kwargs):
    lines = []
    result = function(*args, log=lines.append, **kwargs)
    return result, lines


def one_line_error(capsys, prog, *words):
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(prog + ': error: '), err
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


# -- item 5: one rule, stated once --------------------------------------------------------

def test_the_rule_is_what_libsndfile_reads_here():
    available = soundfile.available_formats()
    for name, codec, extensions in audio.FORMATS:
        readable = name in available and (codec is None
                                          or codec in soundfile.available_subtypes(name))
        assert all((extension in audio.EXTENSIONS) == readable for extension in extensions)
    assert ('.mp3' in audio.EXTENSIONS) == ('MP3' in available)
    assert {'.wav', '.flac', '.ogg'} <= set(audio.EXTENSIONS)
    assert audio.is_recording('A/B.MP3') == ('MP3' in available)
    assert not audio.is_recording('notes.txt') and not audio.is_recording('README')
    assert ', '.join(audio.EXTENSIONS) in audio.RULE


@pytest.mark.skipif('MP3' not in soundfile.available_formats(),
                    reason='this libsndfile has no MP3 support')
def test_a_corpus_of_mp3_files_is_found_and_what_it_skipped_is_named(speech, tmp_path,
                                                                      c9335bce_run, capsys):
    corpus_folder = tmp_path / 'mp3s'
    (corpus_folder / 'more').mkdir(parents=True)
    for index in range(6):
        piece = speech[index * 4000:index * 4000 + 40000] * (0.5 + 0.05 * index)
        name = ('more/' if index % 2 else '') + 'utterance%d.mp3' % index
        soundfile.write(str(corpus_folder / name), piece, 16000, format='MP3',
                        subtype='MPEG_LAYER_III')
    (corpus_folder / 'notes.txt').write_text('not a recording')
    (corpus_folder / 'more' / 'transcript.txt').write_text('not a recording either')
    corpus, lines = logged(dataset.load_corpus, str(corpus_folder),
                           cache_dir=str(tmp_path / 'cache'))
    assert corpus.n_files == 6 and not corpus.skipped
    assert lines[0] == 'corpus {}: found 6 .mp3; skipped 2 .txt (not recordings: those are {})' \
        .format(corpus_folder, audio.RULE)

    # evaluate reads the same corpus (its --dataset): the run's model on the MP3s.
    assert evaluate.main([str(c9335bce_run), '--dataset', str(corpus_folder), '--max-files', '1',
                          '--griffin-lim-iterations', '2']) == 0
    assert '[1/1] ' in capsys.readouterr().out


def test_a_folder_without_recordings_names_what_it_found(tmp_path):
    (tmp_path / 'a.txt').write_text('x')
    (tmp_path / 'b.m4a').write_bytes(b'\0' * 100)
    (tmp_path / 'c.m4a').write_bytes(b'\0' * 100)
    with pytest.raises(dataset.CorpusError) as error:
        dataset.load_corpus(str(tmp_path), cache_dir=str(tmp_path / 'cache'))
    message = str(error.value)
    assert 'no audio files in the corpus folder (found 2 .m4a, 1 .txt)' in message
    assert audio.RULE in message


@pytest.mark.parametrize('tool', ['reconstruct', 'latent encode'])
def test_the_tools_take_what_the_corpus_takes(tool, c9335bce_run, speech, tmp_path, capsys):
    """A file the corpus skips by its name is refused by the tools in one line, naming the rule;
    one it takes, the tools take (an .mp3 where libsndfile reads MP3)."""
    text = tmp_path / 'speech.txt'
    soundfile.write(str(tmp_path / 'speech.wav'), speech, 16000)
    os.rename(tmp_path / 'speech.wav', text)  # a WAV by content, but not by the rule
    main = reconstruct.main if tool == 'reconstruct' else \
        (lambda argv: latent.main(['encode'] + argv))
    prog = 'python -m common.' + tool.split()[0]
    assert main([str(c9335bce_run), str(text), str(tmp_path / 'out')]) == 2
    one_line_error(capsys, prog, 'not a recording by its extension (.txt)', audio.RULE)
    if 'MP3' in soundfile.available_formats():
        mp3 = tmp_path / 'speech.mp3'
        soundfile.write(str(mp3), speech, 16000, format='MP3', subtype='MPEG_LAYER_III')
        output = tmp_path / ('out.wav' if tool == 'reconstruct' else 'out.npz')
        assert main([str(c9335bce_run), str(mp3), str(output)]) == 0
        assert output.exists()


# -- D9: the duration is checked from the header, before anything is decoded ---------------

@pytest.fixture
def one_hertz(tmp_path):
    """A 96 KB WAV whose header says 1 Hz: 48000 frames, 13.3 hours at 16 kHz."""
    path = tmp_path / 'slow.wav'
    rng = numpy.random.default_rng(0)
    soundfile.write(str(path), 0.1 * rng.standard_normal(48000), 1, subtype='PCM_16')
    assert 96000 < path.stat().st_size < 97000
    return path


def test_a_long_header_is_refused_before_anything_is_decoded(one_hertz):
    assert audio.MAX_SECONDS == 3600  # the one limit: an hour
    assert latent.MAX_SECONDS == audio.MAX_SECONDS
    tracemalloc.start()
    try:
        with pytest.raises(audio.AudioError) as error:
            audio.load(one_hertz)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert str(error.value) == ('{}: too long: 13.3 h of audio (48000 frames at 1 Hz, from its '
                                'header); a recording may be at most 1 h (cut it)'
                                .format(one_hertz))
    assert peak < 2 ** 20  # nothing decoded (its samples alone are 192 KB as float32)


def test_the_limit_is_the_duration_in_the_file(tmp_path, speech, monkeypatch):
    monkeypatch.setattr(audio, 'MAX_SECONDS', 3)
    path = tmp_path / 'speech.flac'
    soundfile.write(str(path), speech[:48000], 16000)  # 3 s: at the limit
    assert len(audio.load(path)) == 48000
    soundfile.write(str(path), speech[:48001], 16000)
    with pytest.raises(audio.AudioError, match='too long: 3 s of audio .48001 frames at '
                                               '16000 Hz'):
        audio.load(path)
    soundfile.write(str(path), speech[:24001], 8000)  # the same limit at another rate
    with pytest.raises(audio.AudioError, match='24001 frames at 8000 Hz'):
        audio.load(path)


@pytest.mark.parametrize('tool', ['reconstruct', 'latent encode'])
def test_every_tool_refuses_the_long_header_in_one_line(tool, one_hertz, c9335bce_run,
                                                        tmp_path, capsys):
    main = reconstruct.main if tool == 'reconstruct' else \
        (lambda argv: latent.main(['encode'] + argv))
    assert main([str(c9335bce_run), str(one_hertz), str(tmp_path / 'out')]) == 2
    one_line_error(capsys, 'python -m common.' + tool.split()[0], 'too long: 13.3 h of audio')


def test_the_corpus_skips_the_long_header_and_says_why(one_hertz, speech, tmp_path):
    soundfile.write(str(one_hertz.parent / 'speech.flac'), speech, 16000)
    corpus, lines = logged(dataset.load_corpus, str(one_hertz.parent),
                           cache_dir=str(tmp_path / 'cache'))
    assert corpus.n_files == 1
    assert 'skipped {}: too long: 13.3 h of audio'.format(one_hertz) in '\n'.join(lines)
