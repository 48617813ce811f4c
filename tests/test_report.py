"""results/<id>/index.html: written when training ends, regenerable, checked in a real browser."""
import functools
import html.parser
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
import urllib.parse

import pytest

import common  # noqa: F401

from conftest import REPOSITORY
from common import report

SECTIONS = ['purpose', 'model', 'training-parameters', 'environment', 'results',
            'learning-curve', 'spectrograms', 'audio', 'preview-history']
# The tiny runs preview once, at their last epoch (2): the preview history holds that one.
IMAGES = ['loss.png', 'spectrogram_input.png', 'spectrogram_output.png',
          'utterance/spectrogram_input.png', 'utterance/spectrogram_output.png',
          'previews/epoch_2/spectrogram_output.png',
          'previews/epoch_2/utterance/spectrogram_output.png']
AUDIO = ['input.wav', 'input_griffinlim.wav', 'output.wav', 'utterance/input.wav',
         'utterance/input_griffinlim.wav', 'utterance/output.wav',
         'previews/epoch_2/output.wav', 'previews/epoch_2/utterance/output.wav']


class Page(html.parser.HTMLParser):
    """Section ids in order, img/audio sources, every link, and table rows of the page."""

    def __init__(self, text):
        super().__init__()
        self.sections, self.images, self.audio, self.links, self.latent_rows = [], [], [], [], 0
        self.audio_controls = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == 'section':
            self.sections.append(attrs.get('id'))
        if tag == 'img':
            self.images.append(attrs['src'])
        if tag == 'audio':
            self.audio.append(attrs['src'])
            self.audio_controls.append('controls' in attrs)
        if tag == 'tr' and attrs.get('class') == 'latent':
            self.latent_rows += 1
        for name in ('src', 'href'):
            if name in attrs:
                self.links.append(attrs[name])


def run_report(*args):
    return subprocess.run([sys.executable, '-m', 'common.report'] + [str(a) for a in args],
                          capture_output=True, text=True, timeout=300, cwd=REPOSITORY)


def copy_run(source, target):
    """A copied results folder, as a user would copy it: no snapshots, no model."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns('snapshot_*', 'model.npz'))
    return target


def test_training_writes_the_page_in_the_records_order(c9335bce_run):
    text = (c9335bce_run / 'index.html').read_text(encoding='utf-8')
    page = Page(text)
    assert page.sections == SECTIONS + ['remarks']
    assert sorted(page.images) == sorted(IMAGES)
    assert sorted(page.audio) == sorted(AUDIO) and all(page.audio_controls)
    for link in page.links:  # relative, inside the folder, to files that exist
        parts = urllib.parse.urlsplit(link)
        assert not parts.scheme and not parts.netloc and not link.startswith('/'), link
        assert '..' not in parts.path.split('/'), link
        assert (c9335bce_run / urllib.parse.unquote(parts.path)).is_file(), link
    # Purpose and remarks come from c9335bce/README.md, the layer table from net.py.
    purpose, _, rest = text.partition('<section id="model">')
    assert 'voice-conversion' in purpose and 'Experiment c9335bce: implementing' in purpose
    assert 'not fully connected after all' in rest
    assert page.latent_rows == 1
    assert '<td>enc7</td>' in text and '<td>1024 x 16 x 9</td>' in text
    assert '3,323,649 parameters' in text
    assert 'http://' not in text and 'https://' not in text and 'file:' not in text


def test_the_bc7db4a2_page_has_its_own_layer_table(bc7db4a2_run):
    text = (bc7db4a2_run / 'index.html').read_text(encoding='utf-8')
    assert Page(text).sections[:len(SECTIONS)] == SECTIONS
    assert '<td>enc8</td>' in text and '<td>4096 x 16 x 1</td>' in text
    assert '102,054,657 parameters' in text


def test_layer_rows_follow_the_boxes(bc7db4a2_net):
    rows = report.layer_rows(bc7db4a2_net, (1, 32, 256))
    assert [row['output'] for row in rows][5:8] == [(1024, 16, 8), (4096, 16, 1), (4096, 16, 1)]
    assert rows[-1]['output'] == (1, 32, 256) and not rows[-1]['batch_norm']
    assert [row['box'] for row in rows if row['latent']] == ['enc8']


def test_the_command_regenerates_the_page_with_evaluation_metrics(c9335bce_run, tmp_path):
    folder = copy_run(c9335bce_run, tmp_path / 'run')
    (folder / 'index.html').unlink()
    with open(folder / 'evaluation.json', 'w') as f:
        json.dump({'mcd_db': 6.5, 'stoi': {'mean': 0.75}, 'files': ['a.wav']}, f)
    result = run_report(folder)
    assert result.returncode == 0, result.stderr
    text = (folder / 'index.html').read_text(encoding='utf-8')
    assert Page(text).sections == SECTIONS + ['remarks']
    assert '<td>mcd_db</td>' in text and '<td>stoi.mean</td>' in text and '0.75' in text
    assert 'href="evaluation.json"' in text


@pytest.mark.parametrize('case', ['missing', 'empty'])
def test_a_folder_that_is_not_a_finished_run_is_refused_in_one_line(case, tmp_path):
    folder = tmp_path / case
    if case == 'empty':
        folder.mkdir()
    result = run_report(folder)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and 'Traceback' not in result.stderr
    assert lines[0].startswith('python -m common.report: error:') and str(folder) in lines[0]
    assert not (folder / 'index.html').exists()


# -- the page in a real browser ---------------------------------------------------------------

def browser_or_skip():
    """(chromium, chromedriver, selenium webdriver) or skip -- but never skip in CI."""
    chromium = shutil.which('chromium') or shutil.which('chromium-browser')
    driver = shutil.which('chromedriver')
    try:
        from selenium import webdriver
    except ImportError:
        webdriver = None
    missing = [name for name, found in (('chromium', chromium), ('chromedriver', driver),
                                        ('selenium', webdriver)) if not found]
    if missing:
        reason = ('no headless browser: {} not installed (apt-get install chromium '
                  'chromium-driver; pip install selenium)'.format(', '.join(missing)))
        if os.environ.get('CI') == 'true':
            pytest.fail('CI must run the browser test: ' + reason)
        pytest.skip(reason)
    return chromium, driver, webdriver


class Server:
    """A local HTTP server for one folder, recording the status of every request."""

    def __init__(self, folder):
        self.requests = []
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_request(self, code='-', size='-'):
                server.requests.append((urllib.parse.unquote(self.path), int(code)))

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(
            ('127.0.0.1', 0), functools.partial(Handler, directory=str(folder)))
        self.url = 'http://127.0.0.1:{}/'.format(self.httpd.server_address[1])
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def browser(tmp_path):
    chromium, driver_path, webdriver = browser_or_skip()
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ('--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
                 '--disable-component-update', '--disable-sync', '--no-first-run',
                 '--disable-dev-shm-usage', '--autoplay-policy=no-user-gesture-required',
                 '--user-data-dir={}'.format(tmp_path / 'chromium-profile')):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


IMAGES_LOADED = """
return Array.from(document.images).map(img => [img.getAttribute('src'), img.complete,
                                               img.naturalWidth, img.naturalHeight]);
"""
AUDIO_METADATA = """
const done = arguments[arguments.length - 1];
const players = Array.from(document.querySelectorAll('audio'));
Promise.all(players.map(a => new Promise(resolve => {
  const report = () => resolve([a.getAttribute('src'), a.controls, a.duration,
                                a.error ? a.error.code : null]);
  if (a.readyState >= 1 || a.error) { report(); return; }
  a.addEventListener('loadedmetadata', report, {once: true});
  a.addEventListener('error', report, {once: true});
  a.preload = 'metadata';
  a.load();
}))).then(done);
"""


@pytest.mark.parametrize('experiment', ['c9335bce', 'bc7db4a2'])
def test_the_page_works_in_a_headless_browser_when_copied_and_served(experiment, browser,
                                                                      request, tmp_path):
    # A copy, served over HTTP from elsewhere: the page must need nothing but its folder.
    folder = copy_run(request.getfixturevalue(experiment + '_run'), tmp_path / 'served')
    with Server(folder) as server:
        browser.get(server.url + 'index.html')
        assert browser.title.startswith('Experiment ' + experiment)
        images = browser.execute_script(IMAGES_LOADED)
        assert sorted(src for src, *_ in images) == sorted(IMAGES)
        for src, complete, width, height in images:
            assert complete and width > 0 and height > 0, src
        browser.set_script_timeout(60)
        players = browser.execute_async_script(AUDIO_METADATA)
        assert sorted(src for src, *_ in players) == sorted(AUDIO)
        for src, controls, duration, error in players:
            assert (folder / src).is_file(), src
            assert controls and error is None and duration > 0, (src, duration, error)
        ids = browser.execute_script(
            "return Array.from(document.querySelectorAll('section')).map(s => s.id);")
        assert ids[:len(SECTIONS)] == SECTIONS
    failed = [(path, code) for path, code in server.requests
              if code >= 400 and path != '/favicon.ico']
    assert not failed, failed
    requested = {path.lstrip('/') for path, code in server.requests if code < 400}
    assert set(IMAGES + AUDIO) <= requested
