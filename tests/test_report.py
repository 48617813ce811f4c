"""The pages: a run's index.html, the experiment log results/index.html, and the listening page
of common.compare -- written by the tools, regenerable, and checked in a real headless browser."""
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
import zipfile

import pytest

import common  # noqa: F401

from conftest import REPOSITORY, TINY_RUN, run_experiment
from common import compare, measures, report

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
SCREENSHOTS = os.environ.get('REPORT_SCREENSHOTS')  # a folder: the browser tests save PNGs


class Page(html.parser.HTMLParser):
    """Section ids in order, img/audio sources, every link, table rows and text of the page."""

    def __init__(self, text):
        super().__init__()
        self.sections, self.images, self.audio, self.links, self.latent_rows = [], [], [], [], 0
        self.audio_preload = []
        self.text = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == 'section':
            self.sections.append(attrs.get('id'))
        if tag == 'img':
            self.images.append(attrs['src'])
        if tag == 'audio':
            self.audio.append(attrs['src'])
            self.audio_preload.append(('controls' in attrs, attrs.get('preload')))
        if tag == 'tr' and attrs.get('class') == 'latent':
            self.latent_rows += 1
        for name in ('src', 'href'):
            if name in attrs:
                self.links.append(attrs[name])

    def handle_data(self, data):
        self.text.append(data)


def words(text):
    """The page's text as a reader sees it: tags gone, entities decoded, spaces collapsed."""
    return ' '.join(' '.join(Page(text).text).split())


def section(text, name):
    """The HTML of one <section>."""
    start = text.index('<section id="{}">'.format(name))
    return text[start:text.index('</section>', start)]


def run_report(*args):
    return subprocess.run([sys.executable, '-m', 'common.report'] + [str(a) for a in args],
                          capture_output=True, text=True, timeout=300, cwd=REPOSITORY)


def copy_run(source, target):
    """A copied results folder, as a user would copy it: no snapshots, no model; and as
    training left it, without what tools may have added to the shared run since (evaluation,
    latent analysis, TensorBoard events), so each test starts from the same folder."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(
        'snapshot_*', 'model.npz', 'evaluation.json', 'latent_analysis.*', 'tensorboard'))
    return target


def test_training_writes_the_page_in_the_records_order(c9335bce_run):
    text = (c9335bce_run / 'index.html').read_text(encoding='utf-8')
    page = Page(text)
    assert page.sections == SECTIONS + ['remarks']
    assert sorted(page.images) == sorted(IMAGES)
    assert sorted(page.audio) == sorted(AUDIO)
    # Players load their metadata, so they show each file's length before they are pressed.
    assert set(page.audio_preload) == {(True, 'metadata')}
    for link in page.links:  # relative, inside the folder, to files that exist
        parts = urllib.parse.urlsplit(link)
        assert not parts.scheme and not parts.netloc and not link.startswith('/'), link
        assert '..' not in parts.path.split('/'), link
        assert (c9335bce_run / urllib.parse.unquote(parts.path)).is_file(), link
    # Purpose and remarks come from c9335bce/README.md, the layer table from net.py.
    assert 'voice-conversion' in section(text, 'purpose')
    assert 'Experiment c9335bce: implementing' in text
    assert 'not fully connected after all' in section(text, 'remarks')
    assert page.latent_rows == 1
    assert '<td>enc7</td>' in text and '<td>1024 x 16 x 9</td>' in text
    assert '3,323,649 parameters' in text
    assert 'http://' not in text and 'https://' not in text and 'file:' not in text


def test_the_records_remarks_are_marked_as_the_records_beside_the_runs_length(bc7db4a2_run):
    text = (bc7db4a2_run / 'index.html').read_text(encoding='utf-8')
    remarks = section(text, 'remarks')
    said = words(remarks)
    # The record's words, quoted as the record's, about its 200 epochs; this run's 2 beside.
    quote = remarks[remarks.index('<blockquote class="record">'):]
    assert 'numerical error is smaller than in the previous experiment' in words(quote)
    assert "The record's remarks, about the record's own run of 200 epochs" in said
    assert '(final MSE 0.0205)' in said
    assert 'This run: 2 epochs, 4 iterations, final training MSE' in said
    with open(bc7db4a2_run / 'summary.json') as f:
        summary = json.load(f)
    assert report.format_number(summary['final_training_mse']) in said
    # The results table sets this run beside the record.
    results = words(section(text, 'results'))
    assert 'training time' in results and '1.52 h' in results and '0.0205' in results


def test_the_bc7db4a2_page_has_its_own_layer_table(bc7db4a2_run):
    text = (bc7db4a2_run / 'index.html').read_text(encoding='utf-8')
    assert Page(text).sections[:len(SECTIONS)] == SECTIONS
    assert '<td>enc8</td>' in text and '<td>4096 x 16 x 1</td>' in text
    assert '102,054,657 parameters' in text
    parameters = words(section(text, 'training-parameters'))
    assert 'minibatch 2 50' in parameters  # this run's, then the record's
    assert 'learning rate 1e-05 1e-05' in parameters


def test_layer_rows_follow_the_boxes(bc7db4a2_net):
    rows = report.layer_rows(bc7db4a2_net, (1, 32, 256))
    assert [row['output'] for row in rows][5:8] == [(1024, 16, 8), (4096, 16, 1), (4096, 16, 1)]
    assert rows[-1]['output'] == (1, 32, 256) and not rows[-1]['batch_norm']
    assert [row['box'] for row in rows if row['latent']] == ['enc8']


def test_evaluate_rewrites_the_page_with_named_metrics(c9335bce_run, tmp_path):
    """README: evaluation.json shows in the run's page -- without a manual common.report."""
    folder = copy_run(c9335bce_run, tmp_path / 'run')
    os.symlink(c9335bce_run / 'model.npz', folder / 'model.npz')
    report.write_report(str(folder))  # the page of the run as training left it
    before = (folder / 'index.html').read_text(encoding='utf-8')
    assert 'no audio metrics yet' in before
    result = subprocess.run([sys.executable, '-m', 'common.evaluate', str(folder),
                             '--max-files', '1', '--griffin-lim-iterations', '4'],
                            capture_output=True, text=True, cwd=REPOSITORY, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    text = (folder / 'index.html').read_text(encoding='utf-8')
    assert Page(text).sections == SECTIONS + ['remarks']
    results = section(text, 'results')
    said = words(results)
    assert 'href="evaluation.json"' in results
    # Named as a reader names them, with units: a matrix of renderings by measures.
    for name in ('MCD (dB)', 'LSD (dB)', 'spectral convergence', 'output spectrogram',
                 'input through Griffin-Lim', 'output through Griffin-Lim',
                 'output with the true phase', 'utterances evaluated: 1'):
        assert name in said, name
    # No raw key of evaluation.json is left on the page.
    with open(folder / 'evaluation.json') as f:
        evaluation = json.load(f)
    for key in report.flatten_numbers(evaluation):
        assert key not in said, key
    mcd = evaluation['autoencoder_griffin_lim']['mcd_db']
    assert report.format_number(mcd, 3) in said


def test_the_command_regenerates_the_page_and_names_unknown_numbers(c9335bce_run, tmp_path):
    folder = copy_run(c9335bce_run, tmp_path / 'run')
    (folder / 'index.html').unlink()
    with open(folder / 'evaluation.json', 'w') as f:  # a number no table row knows yet
        json.dump({'mcd_db': 6.5, 'autoencoder_griffin_lim': {'jitter_cents': 41.25},
                   'files': ['a.wav']}, f)
    result = run_report(folder)
    assert result.returncode == 0, result.stderr
    said = words((folder / 'index.html').read_text(encoding='utf-8'))
    assert 'jitter (cents)' in said and '41.25' in said and 'MCD (dB)' in said


# -- README texts through markdown-it-py ----------------------------------------------------------

def test_a_fenced_block_with_a_blank_line_stays_one_block():
    text = '```\npython bc7db4a2/train.py --gpu 0\n\npython -m common.evaluate results/x\n```\n'
    page = report.markdown_to_html(text)
    assert page.count('<pre>') == 1 and '```' not in page and '<p>' not in page
    assert 'train.py --gpu 0\n\npython -m common.evaluate' in page


def test_numbered_lists_stay_lists():
    page = report.markdown_to_html('Steps:\n\n1. resample to 16 kHz\n2. cut 32 frames\n'
                                   '3. take the magnitude\n')
    assert page.count('<ol>') == 1 and page.count('<li>') == 3
    assert '<li>cut 32 frames</li>' in page


def test_a_heading_inside_a_fenced_block_does_not_cut_the_section(tmp_path):
    readme = tmp_path / 'README.md'
    readme.write_text('# Experiment x: a title\n\n## Purpose\n\nBefore the block.\n\n'
                      '```\n## not a heading\npython x/train.py\n```\n\nAfter the block.\n\n'
                      '## Model\n\nThe boxes.\n')
    title, sections = report.readme_sections(str(readme))
    assert title == 'Experiment x: a title'
    assert sorted(sections) == ['model', 'purpose']
    assert 'Before the block.' in sections['purpose'] and 'After the block.' in sections['purpose']
    page = report.markdown_to_html(sections['purpose'])
    assert '<pre><code>## not a heading\npython x/train.py\n</code></pre>' in page


def test_raw_html_is_text_and_links_are_their_text_only():
    page = report.markdown_to_html('<script>alert(1)</script>\n\nSee [the record](http://x/y) '
                                   'and <https://z> and ![a figure](fig.png); **bold**.\n')
    assert '<script>' not in page and '&lt;script&gt;' in page
    assert 'href' not in page and '<img' not in page and 'http' not in page.replace(
        'https://z', '')
    assert 'See the record and https://z and a figure; <strong>bold</strong>.' in page


def test_readers_names_and_units_come_from_one_table():
    assert measures.label('autoencoder_griffin_lim.mcd_db') == \
        'MCD, output through Griffin-Lim (dB)'
    assert measures.label('griffin_lim_input.spectral_convergence') == \
        'spectral convergence, input through Griffin-Lim'
    assert measures.label('spectrogram_lsd_db') == 'spectrogram LSD (dB)'
    assert measures.label('seconds') == 'audio evaluated (s)'
    # A number without a row: named after itself, with the unit its suffix says.
    assert measures.label('autoencoder_griffin_lim.jitter_cents') == \
        'jitter, output through Griffin-Lim (cents)'
    assert measures.order(['autoencoder_griffin_lim.lsd_db', 'zzz', 'files',
                           'griffin_lim_input.mcd_db', 'autoencoder_griffin_lim.mcd_db']) == [
        'files', 'zzz', 'griffin_lim_input.mcd_db', 'autoencoder_griffin_lim.mcd_db',
        'autoencoder_griffin_lim.lsd_db']


def test_lr_schedule_in_words():
    assert report.lr_schedule([{'epoch': 1}]) is None
    assert report.lr_schedule([{'epoch': 1, 'lr': 1e-5}, {'epoch': 2, 'lr': 1e-5}]) == \
        '1e-05 throughout (epochs 1-2)'
    assert report.lr_schedule([{'epoch': e, 'lr': 1e-5 if e < 3 else 1e-5 * 10 ** -0.5}
                               for e in range(1, 5)]) == \
        '1e-05 from epoch 1, 3.162e-06 from epoch 3'
    assert report.lr_schedule([{'epoch': e, 'lr': 1.0 / e} for e in range(1, 11)]) == \
        '1 at epoch 1 to 0.1 at epoch 10 (9 changes)'


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


def test_the_templates_are_in_the_wheel(tmp_path):
    """`pip install .` (not README's editable install) installs the templates with the code."""
    source = tmp_path / 'source'
    source.mkdir()
    for name in ('setup.py', 'pyproject.toml', 'bc7db4a2_chainer_hook.py'):
        shutil.copy(os.path.join(REPOSITORY, name), source)
    shutil.copytree(os.path.join(REPOSITORY, 'common'), source / 'common',
                    ignore=shutil.ignore_patterns('__pycache__'))
    result = subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--no-deps', '-q', '-w',
                             str(tmp_path), str(source)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    (wheel_path,) = tmp_path.glob('*.whl')
    templates = sorted(os.listdir(os.path.join(REPOSITORY, 'common', 'templates')))
    with zipfile.ZipFile(wheel_path) as wheel:
        names = set(wheel.namelist())
        metadata = next(wheel.read(n) for n in names if n.endswith('.dist-info/METADATA'))
    assert templates and {'common/templates/' + name for name in templates} <= names
    assert b'Requires-Dist: jinja2' in metadata and b'Requires-Dist: markdown-it-py' in metadata


# -- the experiment log ------------------------------------------------------------------------

def runs_folder(tmp_path, c9335bce_run, bc7db4a2_run):
    """results/ as a user's: two finished runs, a run in progress, an empty folder, a folder
    with a broken summary.json, one with a name that is no UTF-8, a file, a comparison."""
    results = tmp_path / 'results'
    results.mkdir()
    copy_run(c9335bce_run, results / 'c9335bce')
    copy_run(bc7db4a2_run, results / 'bc7db4a2-cpu-demo')
    running = results / 'running'
    running.mkdir()
    shutil.copy(c9335bce_run / 'log', running / 'log')
    (results / 'empty').mkdir()
    broken = results / 'broken'
    broken.mkdir()
    (broken / 'summary.json').write_text('{"experiment": ')
    os.mkdir(os.path.join(bytes(results), b'caf\xe9'))
    (results / 'README.md').write_text('# results\n')
    (results / 'compare').mkdir()
    (results / 'compare' / 'comparison.md').write_text('# Comparison\n')
    return results


def test_the_experiment_log_lists_every_run_under_the_records_numbers(
        c9335bce_run, bc7db4a2_run, tmp_path):
    results = runs_folder(tmp_path, c9335bce_run, bc7db4a2_run)
    result = run_report(results)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(results / 'index.html')
    text = (results / 'index.html').read_text(encoding='utf-8')
    page = Page(text)
    assert sorted(page.links) == ['bc7db4a2-cpu-demo/index.html', 'c9335bce/index.html']
    said = words(text)
    for summary_of, name in ((c9335bce_run, 'c9335bce'), (bc7db4a2_run, 'bc7db4a2-cpu-demo')):
        with open(summary_of / 'summary.json') as f:
            summary = json.load(f)
        finished = summary['finished'].replace('T', ' ')
        assert '{} {} @numpy 2 of 200 4 {} {} / {} -'.format(
            name, finished, report.format_duration(summary['training_hours']),
            report.format_number(summary['final_training_mse']),
            report.format_number(summary['final_validation_mse'])) in said
    # The record's rows, under each experiment's title, before its runs.
    assert ('Experiment bc7db4a2: fixing the AutoEncoder the record - - 200 not recorded '
            '1.52 h (200 epochs, GPU) 0.0205') in said
    assert 'Experiment c9335bce: implementing the AutoEncoder the record - - 200 not ' \
           'recorded 1.14 h 0.0359' in said
    # Every other folder, as what it is; files and hidden folders are no rows.
    others = said[said.index('Other folders'):]
    assert 'broken not a finished run: ' in others and 'unreadable summary.json' in others
    assert 'caf\ufffd not a results folder' in others
    assert 'compare a comparison (common.compare)' in others
    assert 'empty not a results folder (no summary.json, no log)' in others
    assert 'running not finished: 2 epochs logged, no summary.json' in others
    assert 'README.md' not in said


def test_a_finished_run_and_evaluate_rewrite_the_log_of_results(tmp_path):
    results = tmp_path / 'results'
    out = results / 'c9335bce'
    run = run_experiment('c9335bce', *TINY_RUN, '--snapshots-kept', '0', '--out', str(out))
    assert run.returncode == 0, run.stderr[-3000:]
    text = (results / 'index.html').read_text(encoding='utf-8')
    assert report.LOG_MARK in text and 'href="c9335bce/index.html"' in text
    # An index.html someone else wrote in a folder of runs is theirs: never replaced.
    (results / 'index.html').write_text('<p>my own notes</p>')
    result = run_report(results)
    assert result.returncode == 2 and 'did not write' in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert report.update_pages(str(out)) == str(out / 'index.html')
    assert (results / 'index.html').read_text() == '<p>my own notes</p>'
    # A comparison folder is not a folder of runs.
    (results / 'compare').mkdir()
    (results / 'compare' / 'comparison.md').write_text('x')
    result = run_report(results / 'compare')
    assert result.returncode == 2 and 'a comparison' in result.stderr


# -- the pages in a real browser ---------------------------------------------------------------

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

    def failed(self):
        return [(path, code) for path, code in self.requests
                if code >= 400 and path != '/favicon.ico']


WIDTH = 1280  # a laptop's browser window: no text may overflow its table there


@pytest.fixture
def browser(tmp_path):
    chromium, driver_path, webdriver = browser_or_skip()
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ('--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
                 '--disable-component-update', '--disable-sync', '--no-first-run',
                 '--disable-dev-shm-usage', '--autoplay-policy=no-user-gesture-required',
                 '--hide-scrollbars', '--window-size={},900'.format(WIDTH),
                 '--user-data-dir={}'.format(tmp_path / 'chromium-profile')):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(120)
    yield driver
    driver.quit()


IMAGES_LOADED = """
return Array.from(document.images).map(img => [img.getAttribute('src'), img.complete,
                                               img.naturalWidth, img.naturalHeight]);
"""
# The players as the page left them, none pressed: preload="metadata" must load each length by
# itself (with preload="none" a player never has one: 'no metadata' after 20 s).  Each player's
# width: at 250 px and more Chrome shows the length beside the position ('0:00 / 0:04').
AUDIO_METADATA = """
const done = arguments[arguments.length - 1];
const players = Array.from(document.querySelectorAll('audio'));
Promise.all(players.map(a => new Promise(resolve => {
  const report = () => resolve([a.getAttribute('src'), a.controls, a.duration,
                                a.error ? a.error.code : null, a.clientWidth]);
  if (a.readyState >= 1 || a.error) { report(); return; }
  a.addEventListener('loadedmetadata', report, {once: true});
  a.addEventListener('error', report, {once: true});
  setTimeout(() => resolve([a.getAttribute('src'), a.controls, null, 'no metadata',
                            a.clientWidth]), 20000);
}))).then(done);
"""
# Every table cell whose content is wider than the cell, and every table wider than the
# window: text that overflows its table.
OVERFLOWS = """
const width = document.documentElement.clientWidth;
const found = [];
for (const cell of document.querySelectorAll('td, th')) {
  if (cell.scrollWidth > cell.clientWidth + 1)
    found.push(['cell', cell.textContent.trim().slice(0, 60), cell.scrollWidth, cell.clientWidth]);
}
for (const table of document.querySelectorAll('table')) {
  const box = table.getBoundingClientRect();
  if (box.left < 0 || box.right > width + 1)
    found.push(['table', table.textContent.trim().slice(0, 60), box.left, box.right]);
}
if (document.documentElement.scrollWidth > width + 1)
  found.push(['page', document.documentElement.scrollWidth, width]);
return found;
"""


def check_in_browser(browser, folder, page, name):
    """Open ``folder``/``page`` served over HTTP: (images, players) after checking that every
    image loads, every audio source decodes with a length, nothing overflows at WIDTH px, and
    no request failed.  Saves a screenshot where REPORT_SCREENSHOTS names a folder."""
    with Server(folder) as server:
        browser.get(server.url + page)
        assert browser.execute_script('return document.documentElement.clientWidth') <= WIDTH
        images = browser.execute_script(IMAGES_LOADED)
        for src, complete, width, height in images:
            assert complete and width > 0 and height > 0, src
        players = browser.execute_async_script(AUDIO_METADATA)
        for src, controls, duration, error, width in players:
            assert (folder / urllib.parse.unquote(src)).is_file(), src
            assert controls and error is None and duration > 0, (src, duration, error)
            assert width >= 250, (src, width)
        assert browser.execute_script(OVERFLOWS) == []
        if SCREENSHOTS:
            height = browser.execute_script('return document.documentElement.scrollHeight')
            browser.set_window_size(WIDTH, min(height + 120, 16000))
            browser.save_screenshot(os.path.join(SCREENSHOTS, name + '.png'))
            browser.set_window_size(WIDTH, 900)
    assert not server.failed(), server.failed()
    requested = {path.lstrip('/') for path, code in server.requests if code < 400}
    assert {urllib.parse.unquote(src) for src, *_ in images + players} <= requested
    return images, players


@pytest.mark.parametrize('experiment', ['c9335bce', 'bc7db4a2'])
def test_the_run_page_works_in_a_headless_browser_when_copied_and_served(
        experiment, browser, request, tmp_path):
    # A copy, served over HTTP from elsewhere: the page must need nothing but its folder.
    folder = copy_run(request.getfixturevalue(experiment + '_run'), tmp_path / 'served')
    images, players = check_in_browser(browser, folder, 'index.html', 'run-' + experiment)
    assert browser.title.startswith('Experiment ' + experiment)
    assert sorted(src for src, *_ in images) == sorted(IMAGES)
    assert sorted(src for src, *_ in players) == sorted(AUDIO)


def test_the_experiment_log_works_in_a_headless_browser(c9335bce_run, bc7db4a2_run, browser,
                                                       tmp_path):
    results = runs_folder(tmp_path, c9335bce_run, bc7db4a2_run)
    assert report.main([str(results)]) == 0
    check_in_browser(browser, results, 'index.html', 'log')
    # Each run's link opens its page.
    with Server(results) as server:
        browser.get(server.url + 'index.html')
        browser.find_element('link text', 'c9335bce').click()
        assert browser.title.startswith('Experiment c9335bce')


def test_the_listening_page_works_in_a_headless_browser(c9335bce_run, bc7db4a2_run, browser,
                                                        tmp_path):
    out = tmp_path / 'compare'
    compare.compare([str(bc7db4a2_run), str(c9335bce_run)], str(out), excerpts=1,
                    griffin_lim_iterations=8)
    images, players = check_in_browser(browser, out, 'index.html', 'listening')
    assert sorted(src for src, *_ in images) == [compare.LEARNING_CURVES, compare.SPECTROGRAMS]
    # Two utterances (the real one, one excerpt) x (input, Griffin-Lim, two runs' outputs).
    assert len(players) == 2 * 4
    assert len({src for src, *_ in players}) == 8


def test_a_summary_with_only_the_required_fields_still_gets_its_pages(tmp_path):
    """A results folder from elsewhere, of an older or smaller training: '-' where it is silent."""
    results = tmp_path / 'results'
    folder = results / 'minimal'
    folder.mkdir(parents=True)
    (folder / 'summary.json').write_text(json.dumps(
        {'experiment': 'bc7db4a2', 'net': 'bc7db4a2/net.py:Net', 'parameters': 102054657}))
    (folder / 'log').write_text(json.dumps([{'epoch': 1, 'main/loss': 1.5}]))
    assert report.main([str(folder)]) == 0
    said = words((folder / 'index.html').read_text(encoding='utf-8'))
    assert 'finished -' in said and 'This run: length unknown, final training MSE -' in said
    assert (results / 'index.html').is_file()  # the log of results/, rewritten with the page
    said = words((results / 'index.html').read_text(encoding='utf-8'))
    assert 'minimal - - - of 200 - - - / - -' in said
