"""The HTML pages of results folders: a run's page, and the experiment log of a folder of runs.

``python -m common.report results/<id>`` (re)writes ``results/<id>/index.html``, the run's page
in the order of the experiment's record: purpose, model (the layer table, generated from the
net's ENCODER/DECODER boxes), training parameters (with the learning rate as logged),
environment, results (training time, final loss, and the audio metrics of ``evaluation.json``
once ``common.evaluate`` has written them), learning curve, input and output spectrograms,
input and output audio, and the record's remarks, marked as the record's beside this run's
length.  Images and audio are relative links to the folder's own files, so the folder can be
copied or served as it is.

``python -m common.report results/`` (a folder that is not a run) writes ``results/index.html``,
the experiment log: one row per finished run under it, the record's own numbers as reference
rows, and every other folder listed as what it is.  :func:`update_pages` -- called when a run
finishes and by every tool that adds a file to a run (``common.evaluate``) -- rewrites the
run's page and the log of the folder above it.

The pages are Jinja2 templates (``common/templates/``, autoescaped); README texts go through
markdown-it-py (CommonMark and tables, raw HTML off, links shown as their text only: a page
links to nothing outside its folder).  Where each fact comes from (one place each):

- purpose, title and remarks: the experiment folder's ``README.md`` -- its first ``#``
  heading, and its ``## Purpose`` and ``## Remarks ...`` sections; without a README (or a
  Purpose section) the first paragraph of the experiment's ``train.py`` docstring;
- the record's epochs, minibatch and learning rate: the defaults its ``train.py`` passes to
  :func:`common.cli.training_parser` (read with ``ast``, never imported); its training time and
  final loss: the ``recorded`` column of the README's tables;
- the layer table: the net's ENCODER and DECODER (``summary.json`` names the net);
- names and units of the numbers: :mod:`common.measures`;
- everything else: the results folder (``summary.json``, ``log``, the preview files).
"""
import argparse
import ast
import collections
import datetime
import json
import math
import os
import re
import sys
import urllib.parse

import jinja2
import markdown_it
import markupsafe

from common import files, measures, preview, runs
from common import latent_measures  # the Latent section (python -m common.latent analyze)

INDEX = 'index.html'
EVALUATION = 'evaluation.json'
MAX_EVALUATION_BYTES = 2 ** 24  # means, intervals and per-utterance values (~360 bytes each)
MAX_README_BYTES = 2 ** 20
MAX_PAGE_BYTES = 16 * 2 ** 20  # an index.html read back to see who wrote it
#: The experiment log's mark: an index.html holding it was written by this module, and may be
#: rewritten; any other index.html of a folder of runs is someone's own page, left alone.
LOG_MARK = 'common.report: experiment log'
#: Folders whose index.html the experiment log is kept in when a run under them finishes.
RESULTS_FOLDER_NAME = 'results'
#: What the listening page of common.compare leaves in its folder.
COMPARISON_FILES = ('comparison.md',)

#: The preview folders the training writes (common/preview.py): (sub-folder, what it shows).
PREVIEWS = (
    ('', 'a fixed validation excerpt (1.06 s)'),
    ('utterance', 'a whole recorded utterance (CMU ARCTIC a0007, shipped by pysptk)'),
)
#: The audio files of each preview folder, in the order they are played.
AUDIO = (
    ('input.wav', 'input'),
    ('input_griffinlim.wav', 'input through Griffin-Lim (phase reconstruction alone)'),
    ('output.wav', 'output (AutoEncoder, then Griffin-Lim)'),
)
OPS = {'conv': 'Convolution2D', 'deconv': 'Deconvolution2D'}


# -- numbers ---------------------------------------------------------------------------------

def format_number(value, digits=4):
    """A float to ``digits`` significant digits, an int with thousands separators, None as '-'."""
    if value is None:
        return '-'
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return '{:,}'.format(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return '{:.{}g}'.format(value, digits)


def format_duration(hours):
    """Training time as the record writes it ('1.14 h'), or in minutes/seconds when short."""
    if hours is None:
        return '-'
    if hours >= 1:
        return '{:.2f} h'.format(hours)
    if hours * 60 >= 1:
        return '{:.1f} min'.format(hours * 60)
    return '{:.0f} s'.format(hours * 3600)


def format_shape(shape):
    return ' x '.join(str(n) for n in shape) if shape else '-'


def format_value(value):
    """A hyper-parameter or setting as text: lists joined, numbers to 6 digits, None as '-'."""
    if isinstance(value, (list, tuple)):
        return ', '.join(str(v) for v in value) if value else '-'
    if isinstance(value, dict):
        return json.dumps(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return format_number(value, 6)
    return '-' if value is None else str(value)


def format_hyperparameter(key, value):
    """A summary.json hyper-parameter as text (:func:`format_value`); the settings changed on a
    forced --resume as 'at iteration 120: --lr 1e-05 to 1e-06'."""
    if key == 'changed_on_resume' and isinstance(value, list):
        parts = []
        for change in value:
            if not isinstance(change, dict):
                return format_value(value)
            flags = ', '.join('--{} {} to {}'.format(
                name.replace('_', '-'), *(format_value(v) for v in pair))
                for name, pair in change.items()
                if name != 'iteration' and isinstance(pair, list) and len(pair) == 2)
            parts.append('at iteration {}: {}'.format(format_value(change.get('iteration')),
                                                      flags))
        return '; '.join(parts) or '-'
    return format_value(value)


def format_measure(value, measure):
    """A number of :mod:`common.measures` with its unit ('6.52 dB'), or '-'."""
    if value is None:
        return '-'
    text = format_number(value, measure.digits)
    return '{} {}'.format(text, measure.unit) if measure.unit else text


def format_result(key, value):
    """A summary.json result (:data:`common.measures.RESULTS`) as the pages show it."""
    if key == 'training_hours':
        return format_duration(value)
    return format_measure(value, measures.RESULTS[key])


def flatten_numbers(data, prefix=''):
    """Numeric leaves of nested dicts, keyed by dotted paths; lists, strings, booleans dropped."""
    flat = {}
    if not isinstance(data, dict):
        return flat
    for key, value in data.items():
        name = prefix + str(key)
        if isinstance(value, dict):
            flat.update(flatten_numbers(value, name + '.'))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            flat[name] = value
    return flat


def evaluation_metrics(folder):
    """The numeric entries of the folder's evaluation.json (flattened), or {} when there is none."""
    path = os.path.join(folder, EVALUATION)
    if not os.path.lexists(path):
        return {}
    return flatten_numbers(runs.read_json(path, EVALUATION, MAX_EVALUATION_BYTES))


def metric_matrix(metrics):
    """evaluation.json as a matrix for a reader: (headings, rows, bookkeeping).

    One row per group -- the top-level quality numbers (the output spectrogram), then each
    rendering -- and one column per measure ('MCD (dB)', 'LSD (dB)', ...: the top-level
    'spectrogram LSD' shares the 'LSD' column, its row says what was measured); rows are
    (name, [text per column]).  Columns no row fills do not exist.  Bookkeeping numbers (known
    ones without a 'better': utterances, seconds, iterations) come apart as [(label, text)]."""
    groups, bookkeeping = collections.OrderedDict(), []
    for key in measures.order(metrics):
        group, _, leaf = key.rpartition('.')
        measure = measures.measure(key)
        if not group and measure.better is None and leaf in measures.MEASURES:
            bookkeeping.append((measures.label(key), format_number(metrics[key], measure.digits)))
        else:
            groups.setdefault(group, {})[leaf] = metrics[key]
    columns = collections.OrderedDict()  # heading -> the leaves shown in that column
    for values in groups.values():
        for leaf in values:
            measure = measures.measure(leaf)
            shown = re.sub(r'^spectrogram ', '', measure.name)
            heading = '{} ({})'.format(shown, measure.unit) if measure.unit else shown
            if leaf not in columns.setdefault(heading, []):
                columns[heading].append(leaf)
    rows = []
    for group, values in groups.items():
        cells = []
        for leaves in columns.values():
            leaf = next((leaf for leaf in leaves if leaf in values), None)
            cells.append('-' if leaf is None
                         else format_number(values[leaf], measures.measure(leaf).digits))
        rows.append(('output spectrogram' if not group else measures.group_name(group), cells))
    return list(columns), rows, bookkeeping


# -- the learning rate as logged ---------------------------------------------------------------

def lr_changes(log):
    """[(epoch, lr)] where the logged learning rate changes (the first entry included); [] when
    the log holds no 'lr' (a run from before the learning rate was logged)."""
    changes = []
    for entry in log:
        lr = entry.get('lr')
        if isinstance(lr, (int, float)) and not isinstance(lr, bool):
            if not changes or lr != changes[-1][1]:
                changes.append((entry.get('epoch'), lr))
    return changes


def lr_schedule(log):
    """The learning-rate schedule as logged, in words; None when the log has no 'lr'."""
    changes = lr_changes(log)
    if not changes:
        return None
    epochs = [entry.get('epoch') for entry in log if 'lr' in entry]
    if len(changes) == 1:
        return '{} throughout (epochs {}-{})'.format(format_number(changes[0][1]),
                                                     epochs[0], epochs[-1])
    if len(changes) <= 4:
        return ', '.join('{} from epoch {}'.format(format_number(lr), epoch)
                         for epoch, lr in changes)
    return '{} at epoch {} to {} at epoch {} ({} changes)'.format(
        format_number(changes[0][1]), changes[0][0], format_number(changes[-1][1]),
        changes[-1][0], len(changes) - 1)


# -- the layer table -------------------------------------------------------------------------

def _pair(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def box_output_shape(box, shape):
    """(C, T, F) after one box, by Chainer's output-size rules (no network is built)."""
    k, s, p = _pair(box.ksize), _pair(box.stride), _pair(box.pad)
    if box.op == 'deconv':
        size = [s[i] * (shape[i + 1] - 1) + k[i] - 2 * p[i] for i in range(2)]
    else:
        size = [(shape[i + 1] + 2 * p[i] - k[i]) // s[i] + 1 for i in range(2)]
    return (box.out_channels, size[0], size[1])


def _kernel(value):
    return 'x'.join(str(v) for v in value) if isinstance(value, (tuple, list)) else str(value)


def layer_rows(net_class, input_shape):
    """One dict per box of ``net_class`` (encoder, then decoder) with its output shape."""
    rows = []
    shape = tuple(input_shape)
    latent = net_class.ENCODER[-1].name if net_class.ENCODER else None
    for box in tuple(net_class.ENCODER) + tuple(net_class.DECODER):
        shape = box_output_shape(box, shape)
        rows.append({
            'box': box.name, 'op': OPS.get(box.op, box.op), 'out': box.out_channels,
            'ksize': _kernel(box.ksize), 'stride': _kernel(box.stride), 'pad': _kernel(box.pad),
            'activation': box.activation, 'batch_norm': box.batch_norm,
            'output': shape, 'latent': box.name == latent,
        })
    return rows


# -- texts of the experiment folder ----------------------------------------------------------

def _no_link(renderer, tokens, index, options, env):
    return ''


def _image_as_text(renderer, tokens, index, options, env):
    return markdown_it.common.utils.escapeHtml(
        renderer.renderInlineAsText(tokens[index].children or [], options, env))


def markdown_parser():
    """CommonMark with tables; raw HTML shown as text; links and images as their text only (a
    page links to nothing outside its own folder)."""
    md = markdown_it.MarkdownIt('commonmark', {'html': False, 'linkify': False,
                                               'typographer': False}).enable('table')
    md.add_render_rule('link_open', _no_link)
    md.add_render_rule('link_close', _no_link)
    md.add_render_rule('image', _image_as_text)
    return md


MARKDOWN = markdown_parser()


def markdown_to_html(text):
    """A README section as HTML (safe to insert: raw HTML is escaped, links are text)."""
    return markupsafe.Markup(MARKDOWN.render(text or ''))


def read_text(path):
    """A text file of at most MAX_README_BYTES, or '' when there is none or it is unreadable."""
    try:
        return files.read_regular(path, MAX_README_BYTES).decode('utf-8', 'replace')
    except (OSError, ValueError):
        return ''


def _inline_text(token):
    """The plain text of an inline token (code spans keep their content)."""
    return ''.join(child.content for child in token.children or []
                   if child.type in ('text', 'code_inline', 'softbreak'))


def readme_sections(path):
    """(title, {lower-case '## ' heading: Markdown text}) of a README; ('', {}) without one.

    Headings are found by the Markdown parser, so a '## ' line inside a fenced code block is
    code, not a new section."""
    text = read_text(path)
    if not text:
        return '', {}
    lines = text.splitlines()
    tokens = MARKDOWN.parse(text)
    headings = []  # (level, title, first line, line after the heading)
    for i, token in enumerate(tokens):
        if token.type == 'heading_open' and token.level == 0 and token.tag in ('h1', 'h2'):
            headings.append((token.tag, _inline_text(tokens[i + 1]).strip(), token.map[0],
                             token.map[1]))
    title = next((name for tag, name, _, _ in headings if tag == 'h1'), '')
    sections = {}
    for index, (tag, name, _, body_start) in enumerate(headings):
        if tag != 'h2':
            continue
        end = headings[index + 1][2] if index + 1 < len(headings) else len(lines)
        sections[name.lower()] = '\n'.join(lines[body_start:end]).strip()
    return title, sections


def docstring_paragraph(path):
    """The first paragraph of a Python file's module docstring, or ''."""
    try:
        doc = ast.get_docstring(ast.parse(read_text(path))) or ''
    except (SyntaxError, ValueError):
        return ''
    return doc.strip().split('\n\n')[0]


def recorded_table_values(sections):
    """{lower-case row label: text} of the 'recorded' column of the README's tables."""
    values = {}
    for text in sections.values():
        tokens = MARKDOWN.parse(text)
        column, cells, in_head = None, [], False
        for i, token in enumerate(tokens):
            if token.type == 'thead_open':
                in_head, cells = True, []
            elif token.type == 'tbody_open':
                in_head = False
            elif token.type == 'table_close':
                column = None
            elif token.type in ('th_open', 'td_open'):
                cells.append(_inline_text(tokens[i + 1]).strip())
            elif token.type == 'tr_open':
                cells = []
            elif token.type == 'tr_close':
                if in_head:
                    lowered = [cell.lower() for cell in cells]
                    column = lowered.index('recorded') if 'recorded' in lowered else None
                elif column is not None and len(cells) > column and cells[0]:
                    values.setdefault(cells[0].lower(), cells[column])
    return values


def record_defaults(folder):
    """The record's hyper-parameters: the constant keywords ``train.py`` passes to
    ``training_parser`` (epoch, batchsize, lr), read with ``ast``; {} where there are none."""
    try:
        tree = ast.parse(read_text(os.path.join(folder, 'train.py')))
    except (SyntaxError, ValueError):
        return {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, 'attr', getattr(
                node.func, 'id', None)) == 'training_parser':
            found = {}
            for keyword in node.keywords:
                if keyword.arg and isinstance(keyword.value, ast.Constant):
                    found[keyword.arg] = keyword.value.value
            return found
    return {}


def names_experiment(heading, experiment_id):
    """Whether a README heading names ``experiment_id`` (as a whole word)."""
    return re.search(r'(?<![A-Za-z0-9_.-]){}(?![A-Za-z0-9_-])'.format(re.escape(experiment_id)),
                     heading) is not None


def experiment_texts(experiment_id):
    """{'title', 'purpose', 'remarks', 'record', 'warning'} of an experiment folder (the places
    above).

    A README whose first heading does not name the experiment is most likely the record of the
    experiment it was copied from (README.md, "Starting the next experiment"): its heading is
    then not the title, and 'warning' (else '') says so in one line, for the page and for the
    start of training.

    'record': the record's epochs, minibatch, learning rate (numbers, where train.py gives them),
    training time and final loss (texts, where the README's tables have a 'recorded' column).
    Only an experiment folder of this repository is read (:func:`common.runs.experiment_folder`:
    the id comes from a results folder, which may come from elsewhere); for any other id the
    page says so instead of a purpose.
    """
    try:
        folder = runs.experiment_folder(experiment_id)
    except runs.RunError as e:
        return {'title': 'Experiment {}'.format(experiment_id), 'remarks': '', 'record': {},
                'purpose': 'No purpose: {}.'.format(e), 'known': False, 'warning': ''}
    title, sections = readme_sections(os.path.join(folder, 'README.md'))
    warning = ''
    if title and not names_experiment(title, experiment_id):
        warning = ('{}/README.md is headed "{}", which does not name {}: a copy of another '
                   'experiment\'s record? Its Purpose and Remarks are shown as this '
                   'experiment\'s; make its heading name {}'.format(
                       experiment_id, title, experiment_id, experiment_id))
        title = ''

    def section(word):  # '## Remarks' or '## Remarks (the author's)'
        return next((text for name, text in sections.items()
                     if re.match(re.escape(word) + r'\b', name)), '')

    recorded = recorded_table_values(sections)
    record = {key: value for key, value in record_defaults(folder).items()
              if key in ('epoch', 'batchsize', 'lr')}
    for key, labels in (('training_time', ('training time',)),
                        ('final_mse', ('final loss (mse)', 'final mse', 'final loss'))):
        text = next((recorded[label] for label in labels if label in recorded), None)
        if text:
            record[key] = text
    purpose = section('purpose') or docstring_paragraph(os.path.join(folder, 'train.py'))
    return {'title': title or 'Experiment {}'.format(experiment_id), 'purpose': purpose,
            'remarks': section('remarks'), 'record': record, 'known': True, 'warning': warning}


def repository_experiments():
    """Ids of the experiment folders of this repository, sorted."""
    found = []
    for name in sorted(os.listdir(runs.REPOSITORY)):
        try:
            runs.experiment_folder(name)
        except runs.RunError:
            continue
        found.append(name)
    return found


# -- templates -------------------------------------------------------------------------------

def url(relative):
    """A relative link to a file of the page's folder (any name: bytes the OS gave us too)."""
    if isinstance(relative, str):
        relative = relative.encode('utf-8', 'surrogateescape')
    return urllib.parse.quote(relative)


def display_name(name):
    """A file name as text, whatever bytes it holds."""
    return name.encode('utf-8', 'surrogateescape').decode('utf-8', 'replace')


def markdown_cell(text):
    """Text for a cell of a Markdown table: one line, '|' escaped."""
    return ' '.join(str(text).split()).replace('|', '\\|')


def _environment():
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader('common', 'templates'),
        autoescape=jinja2.select_autoescape(['html']), undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    environment.filters.update(number=format_number, duration=format_duration,
                               shape=format_shape, value=format_value, url=url,
                               name=display_name, md=markdown_cell)
    environment.globals['LOG_MARK'] = LOG_MARK
    return environment


TEMPLATES = _environment()


def render_template(name, **context):
    return TEMPLATES.get_template(name).render(**context)


def _write(path, page):
    try:
        with files.atomic_write(path, 'w', encoding='utf-8') as f:
            f.write(page)
    except OSError as e:  # a read-only copy of someone's folder, a full disk
        raise runs.RunError('cannot write {} ({})'.format(path, e.strerror or e))
    return path


def _now():
    return datetime.datetime.now().isoformat(timespec='seconds')


# -- the run's page --------------------------------------------------------------------------

def _model(summary):
    model = {'parameters': summary['parameters'], 'net': summary['net'],
             'latent_shape': format_shape(summary.get('latent_shape')),
             'input_shape': format_shape(summary.get('input_shape')), 'rows': None,
             'problem': None}
    try:
        net_class = runs.net_class(summary['net'])
        model['rows'] = layer_rows(net_class, summary.get('input_shape') or (1, 32, 256))
    except (runs.RunError, AttributeError, TypeError, ValueError) as e:
        model['problem'] = str(e)
    return model


def _media(folder, relative, caption):
    return {'src': relative, 'caption': caption,
            'present': os.path.isfile(os.path.join(folder, relative))}


def run_length(summary):
    """'2 epochs, 4 iterations' of a run (what training did, not what was asked)."""
    parts = []
    for key, word in (('epochs_completed', 'epoch'), ('iterations', 'iteration')):
        value = summary.get(key)
        if value is not None:
            parts.append('{} {}{}'.format(format_number(value), word, '' if value == 1 else 's'))
    return ', '.join(parts) or 'length unknown'


def _parameter_rows(summary, record, log):
    hyperparameters = summary.get('hyperparameters') or {}
    recorded = {'epoch': record.get('epoch'), 'batchsize': record.get('batchsize'),
                'lr': record.get('lr')}
    keys = [key for key in measures.HYPERPARAMETERS if key in hyperparameters]
    keys += [key for key in hyperparameters if key not in keys]
    rows = [(measures.hyperparameter_name(key),
             format_hyperparameter(key, hyperparameters[key]),
             format_value(recorded[key]) if recorded.get(key) is not None else '')
            for key in keys]
    schedule = lr_schedule(log)
    rows.insert(2 if len(rows) >= 2 else len(rows),
                ('learning rate as logged', schedule or 'not logged (a run from before the '
                 'log held it)', ''))
    return rows


def render(folder):
    """The page of a finished results folder, as a string."""
    summary = runs.load_summary(folder)
    log = runs.load_log(folder)  # a finished run has its log: refuse a folder without one
    metrics = evaluation_metrics(folder)
    texts = experiment_texts(summary['experiment'])
    record = texts['record']
    environment = {'device': summary.get('device'), 'gpu': summary.get('gpu')}
    environment.update(summary.get('environment') or {})
    recorded = {'epochs_completed': format_number(record.get('epoch'))
                if record.get('epoch') is not None else '',
                'training_hours': record.get('training_time', ''),
                'final_training_mse': record.get('final_mse', '')}
    results = [(measures.RESULTS[key].name, format_result(key, summary.get(key)),
                recorded.get(key, '')) for key in measures.RESULTS
               if not key.startswith('gpu_memory') and key != 'peak_gpu_memory_mib'
               or summary.get(key) is not None]
    previews = []
    for sub, what in PREVIEWS:
        previews.append({
            'what': what,
            'spectrograms': [_media(folder, '/'.join(filter(None, (sub, name))),
                                    '{}: {}'.format(role, what))
                             for name, role in (('spectrogram_input.png', 'input'),
                                                ('spectrogram_output.png', 'output'))],
            'audio': [_media(folder, '/'.join(filter(None, (sub, name))), caption)
                      for name, caption in AUDIO],
        })
    listed = [name for name in ('summary.json', 'log', EVALUATION, latent_measures.FILENAME)
              if os.path.isfile(os.path.join(folder, name))]
    if os.path.isdir(os.path.join(folder, 'tensorboard')):
        listed.append('tensorboard/')  # python -m common.tensorboard, or --tensorboard
    analysis = latent_measures.read_analysis(folder)  # python -m common.latent analyze
    headings, matrix, bookkeeping = metric_matrix(metrics)
    return render_template(
        'run.html', title=texts['title'], summary=summary, texts=texts,
        purpose=markdown_to_html(texts['purpose']), remarks=markdown_to_html(texts['remarks']),
        record=record, run_length=run_length(summary),
        final_mse=format_number(summary.get('final_training_mse')),
        model=_model(summary), parameters=_parameter_rows(summary, record, log),
        dataset=[(key.replace('_', ' '), format_value(value))
                 for key, value in (summary.get('dataset') or {}).items()],
        environment=[(key.replace('_', ' '), format_value(value))
                     for key, value in environment.items()],
        results=results, record_column=any(row[2] for row in results),
        loss=_media(folder, 'loss.png', 'training and validation MSE per epoch'),
        metric_headings=headings, metric_rows=matrix,
        bookkeeping=bookkeeping, evaluated=bool(metrics), evaluation=EVALUATION,
        latent=None if analysis is None else {
            'rows': latent_measures.page_rows(analysis),
            'figure': _media(folder, latent_measures.FIGURE,
                             'scree, truncation curve and voice map of the latent')},
        previews=previews, history=_history(folder), files=listed, written=_now())


def _history(folder):
    """The preview history (:func:`common.preview.history`): per preview sample, its output
    spectrogram and audio at each kept epoch, oldest first; [] when the run kept none."""
    entries = preview.history(folder, [sub for sub, _ in PREVIEWS])
    if not entries:
        return []
    return [{'what': what, 'epochs': [
        {'epoch': entry['epoch'],
         'image': entry['files'].get((sub, 'spectrogram_output.png')),
         'audio': entry['files'].get((sub, 'output.wav'))} for entry in entries]}
            for sub, what in PREVIEWS]


def write_report(folder):
    """Write ``folder``/index.html (atomically) and return its path; RunError if not finished."""
    return _write(os.path.join(folder, INDEX), render(folder))


# -- the experiment log ----------------------------------------------------------------------

def _log_run(path, name, summary, log, texts, metrics):
    record = texts['record']
    epochs = summary.get('epochs_completed')
    mcd = metrics.get('{}.mcd_db'.format(measures.HEARD))
    device = summary.get('device') or '-'
    if summary.get('gpu'):
        gpu = summary['gpu']
        device = '{} ({})'.format(device, gpu.get('name') if isinstance(gpu, dict) else gpu)
    return {
        'kind': 'run', 'name': name, 'experiment': summary['experiment'],
        'title': texts['title'], 'finished': str(summary.get('finished') or '-'),
        'device': device,
        'epochs': '{} of {}'.format(format_number(epochs), format_number(record['epoch']))
        if record.get('epoch') is not None else format_number(epochs),
        'iterations': format_number(summary.get('iterations')),
        'training_time': format_duration(summary.get('training_hours')),
        'final_mse': '{} / {}'.format(format_number(summary.get('final_training_mse')),
                                      format_number(summary.get('final_validation_mse'))),
        'mcd': format_number(mcd, measures.MEASURES['mcd_db'].digits),
        'lr': lr_schedule(log),
        'page': os.path.isfile(os.path.join(path, INDEX)),
    }


def classify(path, name):
    """What a folder under a folder of runs is: a dict for the log, never an exception."""
    try:
        if os.path.lexists(os.path.join(path, 'summary.json')):
            summary = runs.load_summary(path)
            log = runs.load_log(path)
            texts = experiment_texts(summary['experiment'])
            try:
                metrics = evaluation_metrics(path)
                evaluated = ''
            except runs.RunError as e:
                metrics, evaluated = {}, str(e)
            entry = _log_run(path, name, summary, log, texts, metrics)
            if evaluated:
                entry['mcd'] = 'unreadable evaluation.json'
            return entry
        if is_comparison(path):
            return {'kind': 'other', 'name': name, 'what': 'a comparison (common.compare)',
                    'page': os.path.isfile(os.path.join(path, INDEX))}
        if os.path.lexists(os.path.join(path, 'log')):
            log = runs.load_log(path)
            return {'kind': 'other', 'name': name, 'page': False,
                    'what': 'not finished: {} epoch{} logged, no summary.json (running, '
                            'interrupted, or being continued)'.format(
                                len(log), '' if len(log) == 1 else 's')}
        return {'kind': 'other', 'name': name, 'page': False,
                'what': 'not a results folder (no summary.json, no log)'}
    except (runs.RunError, OSError, ValueError) as e:
        return {'kind': 'other', 'name': name, 'page': False,
                'what': 'not a finished run: {}'.format(' '.join(str(e).split()))}


def log_entries(folder):
    """(experiments, others) of a folder of runs: experiments is [{'id', 'title', 'record',
    'runs'}] with the repository's experiments first (each with its record) and the runs under
    ``folder`` sorted by finish time; others the folders that are not finished runs."""
    names = sorted(name for name in os.listdir(folder) if not name.startswith('.')
                   and os.path.isdir(os.path.join(folder, name)))
    entries = [classify(os.path.join(folder, name), name) for name in names]
    experiments = {}
    for experiment_id in repository_experiments():
        texts = experiment_texts(experiment_id)
        experiments[experiment_id] = {'id': experiment_id, 'title': texts['title'],
                                      'record': texts['record'], 'runs': []}
    for entry in entries:
        if entry['kind'] == 'run':
            experiments.setdefault(entry['experiment'], {
                'id': entry['experiment'], 'title': entry['title'], 'record': {},
                'runs': []})['runs'].append(entry)
    for experiment in experiments.values():
        experiment['runs'].sort(key=lambda entry: (entry['finished'], entry['name']))
    return list(experiments.values()), [e for e in entries if e['kind'] != 'run']


def is_log_page(path):
    """Whether ``path`` is an index.html this module wrote as an experiment log."""
    try:
        return LOG_MARK.encode() in files.read_regular(path, MAX_PAGE_BYTES)
    except (OSError, ValueError):
        return False


def is_results_folder(folder):
    """Whether the experiment log is kept in ``folder``: it is named 'results', or holds a log."""
    folder = os.path.abspath(folder)
    return (os.path.basename(folder) == RESULTS_FOLDER_NAME
            or is_log_page(os.path.join(folder, INDEX)))


def render_log(folder):
    experiments, others = log_entries(folder)
    return render_template('log.html', title='Experiment log: {}'.format(
        display_name(os.path.basename(os.path.abspath(folder)))),
        experiments=experiments, others=others,
        any_lr=any(run['lr'] for e in experiments for run in e['runs']), written=_now())


def write_log(folder):
    """Write ``folder``/index.html, the experiment log, and return its path.  RunError for a
    folder that is a run or a comparison, or whose index.html someone else wrote."""
    if not os.path.isdir(folder):
        raise runs.RunError('{}: no such folder'.format(folder))
    for name in ('summary.json', 'log'):
        if os.path.lexists(os.path.join(folder, name)):
            raise runs.RunError('{}: a results folder of one run, not a folder of runs'
                                .format(folder))
    if is_comparison(folder):
        raise runs.RunError('{}: a comparison (python -m common.compare writes its page)'
                            .format(folder))
    path = os.path.join(folder, INDEX)
    if os.path.lexists(path) and not is_log_page(path):
        raise runs.RunError('{}: holds an index.html that common.report did not write; move '
                            'it away to write the experiment log there'.format(folder))
    return _write(path, render_log(folder))


def update_log(folder):
    """Rewrite the experiment log of ``folder`` if it keeps one (:func:`is_results_folder`)
    and its index.html is absent or a log; return its path, or None where it keeps none."""
    path = os.path.join(folder, INDEX)
    if not is_results_folder(folder) or (os.path.lexists(path) and not is_log_page(path)):
        return None
    return _write(path, render_log(folder))


def update_pages(folder):
    """Rewrite a finished run's page and the experiment log of the folder above it, and return
    the page's path: what training calls when it finishes, and every tool that adds a file to
    the run after it (evaluate; latent analyses, TensorBoard logs).  RunError when the page
    cannot be written; a log that cannot be is one line on stderr (the run's page is written)."""
    page = write_report(folder)
    try:
        update_log(os.path.dirname(os.path.abspath(folder)))
    except runs.RunError as e:
        print('warning: experiment log not rewritten: {}'.format(e), file=sys.stderr)
    return page


# -- command line ----------------------------------------------------------------------------

def is_run_folder(folder):
    """A run's folder (finished or not) rather than a folder of runs."""
    return any(os.path.lexists(os.path.join(folder, name)) for name in ('summary.json', 'log'))


def is_comparison(folder):
    return any(os.path.lexists(os.path.join(folder, name)) for name in COMPARISON_FILES)


def _holds_folders(folder):
    try:
        return any(os.path.isdir(os.path.join(folder, name)) for name in os.listdir(folder))
    except OSError:
        return False


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog='python -m common.report',
        description='Write index.html: the page of a finished results folder, or, for a '
                    'folder of results folders (results/), the experiment log of all runs.')
    parser.add_argument('folders', nargs='+', metavar='FOLDER',
                        help='results folder(s) of runs, or a folder of them')
    args = parser.parse_args(argv)
    try:
        for folder in args.folders:
            if (os.path.isdir(folder) and not is_run_folder(folder)
                    and (_holds_folders(folder) or is_results_folder(folder)
                         or is_comparison(folder))):
                print(write_log(folder))
            else:
                print(update_pages(folder))
    except runs.RunError as e:
        print('{}: error: {}'.format(parser.prog, e), file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
