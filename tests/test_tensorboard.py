"""--tensorboard and python -m common.tensorboard: event files read back with TensorBoard's own
EventAccumulator and served by a real TensorBoard; the preview history (previews/epoch_<N>/)."""
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import numpy
import pytest
import soundfile

import common  # noqa: F401

from conftest import REPOSITORY, TINY_RUN, read_json, run_experiment
from test_report import Server, browser, copy_run  # noqa: F401  (browser: a fixture)
from common import dataset, inference, preview, runs
from common import tensorboard as tb

pytest.importorskip('tensorboardX', reason="pip install -e '.[test]' installs tensorboardX")
pytest.importorskip('tensorboard', reason="pip install -e '.[test]' installs tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

#: Two previews (epochs 1 and 2), both snapshots kept (resume from epoch 1).
FLAGS = TINY_RUN + ['--preview-interval', '1', '--snapshots-kept', '2', '--tensorboard']
SAMPLES = {'': 'excerpt', 'utterance': 'utterance'}


def accumulate(logdir):
    events = EventAccumulator(str(logdir), size_guidance={
        'scalars': 0, 'images': 0, 'audio': 0, 'histograms': 0, 'tensors': 0})
    events.Reload()
    return events


def log_numbers(log):
    """{tag: [(step, value)]} that the log's entries should give."""
    expected = {}
    for entry in log:
        for key, value in entry.items():
            if key != 'epoch':
                expected.setdefault(key, []).append((entry['epoch'], value))
    return expected


def assert_scalars_match_the_log(events, log):
    expected = log_numbers(log)
    assert set(expected) <= set(events.Tags()['scalars'])
    for tag, pairs in expected.items():
        found = [(event.step, event.value) for event in events.Scalars(tag)]
        # TensorBoard keeps scalars as float32.
        assert found == [(step, float(numpy.float32(value))) for step, value in pairs], tag


def steps(events, kind, tag):
    return [event.step for event in getattr(events, kind)(tag)]


@pytest.fixture(scope='module')
def tensorboard_run(tmp_path_factory):
    """A finished tiny c9335bce run with --tensorboard and a preview each epoch."""
    out = tmp_path_factory.mktemp('results') / 'c9335bce'
    result = run_experiment('c9335bce', *FLAGS, '--out', str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def validation_and_model(out):
    """The run's validation excerpts and voices (as training drew them), and its final net."""
    corpus = dataset.load_corpus(dataset.DEMO_CORPUS, log=lambda message: None)
    validation = dataset.ValidationExcerpts(corpus.validation_waves, 2, seed=0)
    net, _ = runs.load_model(str(out))
    return corpus, validation, net


def test_training_writes_the_log_the_previews_and_the_latents(tensorboard_run):
    out = tensorboard_run
    events = accumulate(out / 'tensorboard')
    assert_scalars_match_the_log(events, read_json(out / 'log'))
    assert {'main/loss', 'validation/main/loss', 'elapsed_time', 'lr'} <= \
        set(events.Tags()['scalars'])

    # Each preview's files, byte for byte: the outputs at both epochs, the inputs once.
    for sub, tag in SAMPLES.items():
        for epoch in (1, 2):
            history = out / 'previews' / 'epoch_{}'.format(epoch) / sub
            image, = [e for e in events.Images(tag + '/spectrogram_output') if e.step == epoch]
            assert image.encoded_image_string == (history / 'spectrogram_output.png').read_bytes()
            sound, = [e for e in events.Audio(tag + '/output') if e.step == epoch]
            wave, rate = soundfile.read(io.BytesIO(sound.encoded_audio_string))
            expected, expected_rate = soundfile.read(str(history / 'output.wav'))
            assert rate == expected_rate == sound.sample_rate == 16000
            numpy.testing.assert_array_equal(wave, expected)  # the preview's wave
        assert steps(events, 'Images', tag + '/spectrogram_input') == [1]
        for name in ('input', 'input_griffinlim'):
            sound, = events.Audio('{}/{}'.format(tag, name))
            assert sound.step == 1
            assert sound.encoded_audio_string == (out / sub / (name + '.wav')).read_bytes()
    # The final preview's history copy is the current preview.
    assert (out / 'previews/epoch_2/utterance/output.wav').read_bytes() == \
        (out / 'utterance/output.wav').read_bytes()

    # Latent histograms of the preview excerpt: those of the final model's latent.
    corpus, validation, net = validation_and_model(out)
    latents = inference.encode(net, validation[0].reshape(-1, 256)).astype(numpy.float64)
    assert latents.shape == (1, 1024, 16, 9)
    assert steps(events, 'Histograms', 'latent/excerpt') == [1, 2]
    final = events.Histograms('latent/excerpt')[-1].histogram_value
    assert final.num == latents.size
    assert final.min == pytest.approx(latents.min(), abs=1e-6)
    assert final.max == pytest.approx(latents.max(), abs=1e-6)
    assert final.sum == pytest.approx(latents.sum(), rel=1e-4, abs=1e-3)

    # Embeddings for the projector at the first and the last preview, labelled by voice.
    config = (out / 'tensorboard' / 'projector_config.pbtxt').read_text()
    assert config.count('embeddings {') == 2 and '00001/' in config and '00002/' in config
    folder = out / 'tensorboard' / '00002' / tb.EMBEDDING
    matrix = numpy.loadtxt(str(folder / 'tensors.tsv'), delimiter='\t', ndmin=2)
    final_latents = inference.encode(net, validation.spectrograms.reshape(-1, 256))
    numpy.testing.assert_allclose(matrix, final_latents.mean(axis=2).reshape(2, -1),
                                  rtol=5e-3, atol=1e-3)  # 3 significant digits
    rows = (folder / 'metadata.tsv').read_text().splitlines()
    files = [os.path.relpath(corpus.validation_files[i], corpus.root)
             for i, _ in validation.locations]
    assert rows == ['voice\tfile'] + ['{}\t{}'.format(f.split('/')[0], f) for f in files]


def test_resume_continues_the_stream_with_every_step_once(tensorboard_run, tmp_path):
    # The finished run, resumed from its epoch-1 snapshot: the stream already holds epoch 2.
    out = tmp_path / 'resumed'
    shutil.copytree(tensorboard_run, out)
    result = run_experiment('c9335bce', *FLAGS, '--out', str(out),
                            '--resume', str(out / 'snapshot_iter_2'))
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(list((out / 'tensorboard').glob('events.out.tfevents.*'))) == 2
    events = accumulate(out / 'tensorboard')
    log = read_json(out / 'log')
    assert [entry['epoch'] for entry in log] == [1, 2]
    assert_scalars_match_the_log(events, log)  # one value a step: the resumed run's
    assert steps(events, 'Images', 'utterance/spectrogram_output') == [1, 2]
    assert steps(events, 'Audio', 'excerpt/output') == [1, 2]
    assert steps(events, 'Histograms', 'latent/excerpt') == [1, 2]
    # The resumed process wrote the inputs at its first preview (epoch 2) again.
    assert steps(events, 'Audio', 'excerpt/input') == [1, 2]
    config = (out / 'tensorboard' / 'projector_config.pbtxt').read_text()
    assert config.count('embeddings {') == 2
    assert sorted(p.name for p in (out / 'previews').iterdir()) == ['epoch_1', 'epoch_2']


def test_a_run_without_the_flag_resumes_with_it_and_gets_its_whole_log(c9335bce_run, tmp_path):
    out = tmp_path / 'later'
    shutil.copytree(c9335bce_run, out)
    result = run_experiment('c9335bce', *FLAGS, '--epoch', '3', '--out', str(out), '--resume')
    assert result.returncode == 0, result.stderr[-3000:]
    events = accumulate(out / 'tensorboard')
    log = read_json(out / 'log')
    assert [entry['epoch'] for entry in log] == [1, 2, 3]
    assert_scalars_match_the_log(events, log)
    assert steps(events, 'Audio', 'excerpt/output') == [3]


def test_without_tensorboardX_the_flag_is_refused_in_one_line(tmp_path):
    out = tmp_path / 'out'
    script = os.path.join(REPOSITORY, 'c9335bce', 'train.py')
    # A Python where `import tensorboardX` fails, as where the extra is not installed.
    code = ('import runpy, sys; sys.modules["tensorboardX"] = None; sys.argv = sys.argv[1:]; '
            'sys.path.insert(0, {!r}); runpy.run_path(sys.argv[0], run_name="__main__")'
            .format(os.path.dirname(script)))
    result = subprocess.run([sys.executable, '-c', code, script, *FLAGS, '--out', str(out)],
                            capture_output=True, text=True, timeout=300, cwd=REPOSITORY)
    assert result.returncode == 2, result.stderr[-3000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and 'Traceback' not in result.stderr, result.stderr[-3000:]
    assert lines[0].startswith('train.py: error: --tensorboard needs tensorboardX')
    assert "pip install -e '.[tensorboard]'" in lines[0]
    assert not out.exists()  # refused before the results folder is touched


# -- finished results folders ----------------------------------------------------------------

def run_command(*folders):
    return subprocess.run([sys.executable, '-m', 'common.tensorboard'] + [str(f) for f in folders],
                          capture_output=True, text=True, timeout=300, cwd=REPOSITORY)


EVALUATION = {'mcd_db': 6.5, 'stoi': {'mean': 0.75, 'files': 3}, 'files': ['a.wav'],
              'finite': True}
LATENT_ANALYSIS = {'active_units': 120, 'effective_rank': 33.5,
                   'speaker_probe': {'accuracy': 0.5, 'chance': 0.125, 'voices': ['a', 'b']},
                   'truncation': [{'k': 1, 'mse': 3.0}]}
METRICS = {'evaluation/mcd_db': 6.5, 'evaluation/stoi/mean': 0.75, 'evaluation/stoi/files': 3,
           'latent_analysis/active_units': 120, 'latent_analysis/effective_rank': 33.5,
           'latent_analysis/speaker_probe/accuracy': 0.5,
           'latent_analysis/speaker_probe/chance': 0.125}


def with_metrics(folder):
    (folder / 'evaluation.json').write_text(json.dumps(EVALUATION))
    (folder / 'latent_analysis.json').write_text(json.dumps(LATENT_ANALYSIS))
    return folder


def assert_metrics(events, step):
    for tag, value in METRICS.items():
        assert [(e.step, e.value) for e in events.Scalars(tag)] == [(step, value)], tag


def test_the_command_writes_a_finished_folder_from_its_files(tensorboard_run, tmp_path):
    folder = tmp_path / 'old'
    shutil.copytree(tensorboard_run, folder, ignore=shutil.ignore_patterns(
        'snapshot_*', 'tensorboard'))
    with_metrics(folder)
    for attempt in range(2):  # run again: its own file is replaced, nothing doubles
        result = run_command(folder)
        assert result.returncode == 0, result.stderr
        assert result.stdout.count('summaries') == 1
        found = list((folder / 'tensorboard').glob('events.out.tfevents.*'))
        assert len(found) == 1 and found[0].name.endswith(tb.FINISHED)
        events = accumulate(folder / 'tensorboard')
        assert_scalars_match_the_log(events, read_json(folder / 'log'))
        assert_metrics(events, 2)
        for sub, tag in SAMPLES.items():
            assert steps(events, 'Images', tag + '/spectrogram_output') == [1, 2]
            for epoch in (1, 2):
                sound, = [e for e in events.Audio(tag + '/output') if e.step == epoch]
                assert sound.encoded_audio_string == (
                    folder / 'previews' / 'epoch_{}'.format(epoch) / sub / 'output.wav'
                ).read_bytes()
            assert steps(events, 'Audio', tag + '/input_griffinlim') == [1]


def test_the_command_adds_only_the_metrics_to_a_training_stream(tensorboard_run, tmp_path):
    folder = tmp_path / 'trained'
    shutil.copytree(tensorboard_run, folder, ignore=shutil.ignore_patterns('snapshot_*'))
    with_metrics(folder)
    result = run_command(folder)
    assert result.returncode == 0, result.stderr
    assert 'metrics only' in result.stdout
    events = accumulate(folder / 'tensorboard')
    assert_scalars_match_the_log(events, read_json(folder / 'log'))  # each step once
    assert_metrics(events, 2)
    assert steps(events, 'Audio', 'utterance/output') == [1, 2]


def test_a_bad_folder_among_others_is_reported_and_the_others_written(tensorboard_run,
                                                                       tmp_path):
    good = tmp_path / 'good'
    shutil.copytree(tensorboard_run, good, ignore=shutil.ignore_patterns(
        'snapshot_*', 'tensorboard'))
    result = run_command(tmp_path / 'compare', good)
    assert result.returncode == 2
    assert result.stderr.count('error') == 1 and 'compare' in result.stderr
    assert len(list((good / 'tensorboard').glob('events.out.tfevents.*'))) == 1


def test_a_folder_without_history_gets_its_latest_preview_at_its_last_epoch(c9335bce_run,
                                                                            tmp_path):
    folder = tmp_path / 'older'
    shutil.copytree(c9335bce_run, folder, ignore=shutil.ignore_patterns(
        'snapshot_*', 'previews'))
    result = run_command(folder)
    assert result.returncode == 0, result.stderr
    events = accumulate(folder / 'tensorboard')
    assert steps(events, 'Audio', 'utterance/output') == [2]
    assert events.Audio('utterance/output')[0].encoded_audio_string == \
        (folder / 'utterance' / 'output.wav').read_bytes()


@pytest.mark.parametrize('case', ['missing', 'unfinished', 'not a wav'])
def test_bad_folders_are_refused_in_one_line(case, tensorboard_run, tmp_path):
    folder = tmp_path / 'bad'
    if case == 'unfinished':
        folder.mkdir()
        (folder / 'log').write_text('[]')
    elif case == 'not a wav':
        shutil.copytree(tensorboard_run, folder, ignore=shutil.ignore_patterns(
            'snapshot_*', 'tensorboard'))
        (folder / 'previews' / 'epoch_1' / 'output.wav').write_bytes(b'RIFF' + b'\0' * 100)
    result = run_command(folder)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and 'Traceback' not in result.stderr, result.stderr
    assert lines[0].startswith('python -m common.tensorboard: error: ')
    assert str(folder) in lines[0]
    assert not list(folder.glob('tensorboard/events.*'))  # nothing half-written


# -- the real TensorBoard --------------------------------------------------------------------

def free_port():
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


def fetch_json(url):
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read().decode('utf-8'))


def test_tensorboard_serves_the_scalars_of_every_run_in_results(tensorboard_run):
    # `tensorboard --logdir results`, as README.md says: each run's stream is a TensorBoard run.
    results = tensorboard_run.parent
    command = shutil.which('tensorboard', path=os.path.dirname(sys.executable))
    assert command, "no tensorboard command: pip install -e '.[test]' installs it"
    port = free_port()
    server = subprocess.Popen([command, '--logdir', str(results), '--host', '127.0.0.1',
                               '--port', str(port)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    base = 'http://127.0.0.1:{}/data/'.format(port)
    try:
        deadline = time.time() + 120
        scalars = None
        while time.time() < deadline:
            assert server.poll() is None, server.stderr.read()[-3000:]
            try:
                if 'c9335bce/tensorboard' in fetch_json(base + 'runs'):
                    scalars = fetch_json(base + 'plugin/scalars/scalars?run=c9335bce/tensorboard'
                                         '&tag=validation/main/loss')
                    if len(scalars) == 2:
                        break
            except OSError:  # not listening yet, or the run not loaded yet
                pass
            time.sleep(0.5)
        assert scalars is not None, 'TensorBoard did not list the run within 120 s'
        log = read_json(tensorboard_run / 'log')
        assert [(step, value) for _, step, value in scalars] == \
            [(entry['epoch'], pytest.approx(entry['validation/main/loss'], rel=1e-6))
             for entry in log]
        # The projector finds both embeddings, and serves them as float32 (2 excerpts x 9216).
        run = 'run=c9335bce/tensorboard'
        info = fetch_json(base + 'plugin/projector/info?' + run)
        assert [(e['tensorName'], e['tensorShape']) for e in info['embeddings']] == \
            [('validation_latents:00001', [2, 9216]), ('validation_latents:00002', [2, 9216])]
        with urllib.request.urlopen(base + 'plugin/projector/tensor?{}&name={}'.format(
                run, 'validation_latents:00002'), timeout=10) as response:
            assert len(response.read()) == 2 * 9216 * 4
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


# -- the preview history ---------------------------------------------------------------------

def test_the_history_keeps_the_records_twenty_previews_and_stays_bounded():
    epochs = list(range(10, 201, 10))
    assert preview.history_kept(epochs, 200, 10) == epochs  # the record: 200 epochs, every 10
    for interval in (1, 3, 10):
        kept = []
        for epoch in range(interval, 5000, interval):
            now = preview.history_kept(kept + [epoch], epoch, interval)
            assert set(now) <= set(kept + [epoch]) and now[-1] == epoch
            assert len(now) <= preview.HISTORY_KEPT + 1
            kept = now
        gaps = numpy.diff(kept[:-1])
        assert len(set(gaps)) == 1 and len(kept) >= preview.HISTORY_KEPT // 2  # evenly spaced
    # Resumed from an earlier snapshot: the previews past it are of a timeline left behind.
    assert preview.history_kept([10, 20, 30, 40], 20, 10) == [10, 20]


def test_the_runs_history_and_page(tensorboard_run):
    entries = preview.history(str(tensorboard_run), ['', 'utterance'])
    assert [entry['epoch'] for entry in entries] == [1, 2]
    assert entries[0]['files'][('utterance', 'output.wav')] == \
        'previews/epoch_1/utterance/output.wav'
    text = (tensorboard_run / 'index.html').read_text(encoding='utf-8')
    history = text.split('<section id="preview-history">')[1].split('</section>')[0]
    for sub in ('', 'utterance/'):
        positions = [history.index('src="previews/epoch_{}/{}output.wav"'.format(epoch, sub))
                     for epoch in (1, 2)]
        assert positions == sorted(positions)
    assert history.count('play in order') == 2


PLAY_IN_ORDER = """
const done = arguments[arguments.length - 1];
const block = document.querySelector('#preview-history div.history');
const players = Array.from(block.querySelectorAll('audio'));
const played = [];
players.forEach(player => {
  player.defaultPlaybackRate = player.playbackRate = 4;
  player.addEventListener('play', () => played.push(player.getAttribute('src')));
});
players[players.length - 1].addEventListener('ended', () => done(played), {once: true});
setTimeout(() => done(played.concat(['timed out'])), 40000);
block.querySelector('button.play-in-order').click();
"""


def test_the_page_plays_the_history_in_order_in_a_browser(tensorboard_run, browser, tmp_path):
    folder = copy_run(tensorboard_run, tmp_path / 'served')
    with Server(folder) as server:
        browser.get(server.url + 'index.html')
        browser.set_script_timeout(60)
        played = browser.execute_async_script(PLAY_IN_ORDER)
    assert played == ['previews/epoch_1/output.wav', 'previews/epoch_2/output.wav']


def test_only_rank_0_writes_the_stream_under_chainermn(tmp_path):
    from test_distributed import MPIEXEC, TWO_WORKERS, run, train_command
    if not MPIEXEC:
        pytest.skip("no mpiexec: pip install -e '.[mpi]' (or '.[test]') brings MPICH")
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    out = tmp_path / 'mpi'
    result = run(train_command(2, 'c9335bce', *TWO_WORKERS, '--epoch', '1', '--tensorboard',
                               '--out', str(out)))
    assert result.returncode == 0, result.stderr[-3000:]
    found = list((out / 'tensorboard').glob('events.out.tfevents.*'))
    assert len(found) == 1
    starts = [event.step for event in EventFileLoader(str(found[0])).Load()
              if event.HasField('session_log')]
    assert starts == [1]  # one writer started the stream
    assert_scalars_match_the_log(accumulate(out / 'tensorboard'), read_json(out / 'log'))
