"""An HTML page for a finished results folder, in the order of the experiment's record.

``python -m common.report results/<id>`` (re)writes ``results/<id>/index.html``; training
writes it once at its end (:func:`write_report`).  The page follows the record: purpose,
model (the layer table, generated from the net's ENCODER/DECODER boxes), training parameters,
environment, results (training time, final loss, and the audio metrics of
``evaluation.json`` once ``common.evaluate`` has written them), learning curve, input and
output spectrograms, input and output audio, remarks.  It is one file with its style inline;
images and audio are relative links to the folder's own files, so the folder can be copied or
served as it is.

Where each fact comes from (one place each):

- purpose, title and remarks: the experiment folder's ``README.md`` -- its first ``#``
  heading, and its ``## Purpose`` and ``## Remarks ...`` sections; without a README (or a
  Purpose section) the first paragraph of the experiment's ``train.py`` docstring;
- the layer table: the net's ENCODER and DECODER (``summary.json`` names the net);
- everything else: the results folder (``summary.json``, ``log``, the preview files).
"""
import argparse
import ast
import datetime
import html
import json
import math
import os
import re
import sys
import urllib.parse

from common import files, runs
from common import latent_measures  # the Latent section (python -m common.latent analyze)

INDEX = 'index.html'
EVALUATION = 'evaluation.json'
MAX_EVALUATION_BYTES = 2 ** 20  # evaluation.json holds a few dozen numbers

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


def layer_rows(net_class, input_shape):
    """One dict per box of ``net_class`` (encoder, then decoder) with its output shape."""
    rows = []
    shape = tuple(input_shape)
    latent = net_class.ENCODER[-1].name if net_class.ENCODER else None
    for box in tuple(net_class.ENCODER) + tuple(net_class.DECODER):
        shape = box_output_shape(box, shape)
        rows.append({
            'box': box.name, 'op': OPS.get(box.op, box.op), 'out': box.out_channels,
            'ksize': box.ksize, 'stride': box.stride, 'pad': box.pad,
            'activation': box.activation, 'batch_norm': box.batch_norm,
            'output': shape, 'latent': box.name == latent,
        })
    return rows


def _kernel(value):
    return 'x'.join(str(v) for v in value) if isinstance(value, (tuple, list)) else str(value)


# -- texts of the experiment folder ----------------------------------------------------------

def readme_sections(path):
    """(title, {lower-case '## ' heading: Markdown text}) of a README; ('', {}) without one."""
    try:
        with open(path, encoding='utf-8') as f:
            text = f.read()
    except OSError:
        return '', {}
    title = ''
    sections = {}
    current = None
    for line in text.splitlines():
        if re.match(r'#\s', line) and not title:
            title = line[2:].strip()
            current = None
        elif re.match(r'##\s', line):
            current = line[3:].strip().lower()
            sections[current] = []
        elif current is not None:
            sections[current].append(line)
    return title, {name: '\n'.join(lines).strip() for name, lines in sections.items()}


def docstring_paragraph(path):
    """The first paragraph of a Python file's module docstring, or ''."""
    try:
        with open(path, encoding='utf-8') as f:
            doc = ast.get_docstring(ast.parse(f.read())) or ''
    except (OSError, SyntaxError):
        return ''
    return doc.strip().split('\n\n')[0]


def experiment_texts(experiment_id):
    """{'title', 'purpose', 'remarks'} of an experiment folder, from the places listed above.

    Only an experiment folder of this repository is read (:func:`common.runs.experiment_folder`:
    the id comes from a results folder, which may come from elsewhere); for any other id the
    page says so instead of a purpose.
    """
    try:
        folder = runs.experiment_folder(experiment_id)
    except runs.RunError as e:
        return {'title': 'Experiment {}'.format(experiment_id), 'remarks': '',
                'purpose': 'No purpose: {}.'.format(e)}
    title, sections = readme_sections(os.path.join(folder, 'README.md'))

    def section(word):  # '## Remarks' or '## Remarks (the author's)'
        return next((text for name, text in sections.items()
                     if re.match(re.escape(word) + r'\b', name)), '')

    purpose = section('purpose') or docstring_paragraph(os.path.join(folder, 'train.py'))
    return {'title': title or 'Experiment {}'.format(experiment_id),
            'purpose': purpose, 'remarks': section('remarks')}


def _inline(text):
    """Escape, then a little inline Markdown: `code`, **bold**, *italic*, [text](link) -> text."""
    text = html.escape(text, quote=False)
    text = re.sub(r'\[([^\]]+)\]\([^)]*\)', r'\1', text)  # no links out of the folder
    text = re.sub(r'`([^`]+)`', r'<code>\1</code>', text)
    text = re.sub(r'\*\*([^*]+)\*\*', r'<strong>\1</strong>', text)
    text = re.sub(r'(?<![*\w])\*([^*\s][^*]*)\*(?!\*)', r'<em>\1</em>', text)
    return text


def markdown_to_html(text):
    """Paragraphs, '-'/'*' lists, '|' tables and '###' headings of a README section."""
    out = []
    blocks = re.split(r'\n\s*\n', text.strip()) if text.strip() else []
    for block in blocks:
        lines = block.splitlines()
        if all(re.match(r'\s*[-*]\s', line) or line.startswith('  ') for line in lines):
            items = []
            for line in lines:
                if re.match(r'\s*[-*]\s', line):
                    items.append(re.sub(r'^\s*[-*]\s+', '', line))
                else:
                    items[-1] += ' ' + line.strip()
            out.append('<ul>' + ''.join('<li>{}</li>'.format(_inline(item)) for item in items)
                       + '</ul>')
        elif all(line.strip().startswith('|') for line in lines):
            rows = [[cell.strip() for cell in line.strip().strip('|').split('|')]
                    for line in lines if not re.fullmatch(r'[\s|:-]+', line)]
            head, body = rows[0], rows[1:]
            out.append('<table><tr>{}</tr>{}</table>'.format(
                ''.join('<th>{}</th>'.format(_inline(c)) for c in head),
                ''.join('<tr>{}</tr>'.format(''.join('<td>{}</td>'.format(_inline(c))
                                                    for c in row)) for row in body)))
        elif re.match(r'#{3,}\s', lines[0]):
            out.append('<h3>{}</h3>'.format(_inline(lines[0].lstrip('#').strip())))
            if lines[1:]:
                out.append(markdown_to_html('\n'.join(lines[1:])))
        elif lines[0].startswith('```') or lines[0].startswith('    '):
            code = [line for line in lines if not line.startswith('```')]
            out.append('<pre>{}</pre>'.format(html.escape('\n'.join(code))))
        else:
            out.append('<p>{}</p>'.format(_inline(' '.join(line.strip() for line in lines))))
    return '\n'.join(out)


# -- the page --------------------------------------------------------------------------------

STYLE = """
body { font-family: sans-serif; max-width: 62em; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; margin-top: 2em; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.latent td { background: #fff4d6; }
figure { margin: 1em 0; } figcaption { color: #555; font-size: 0.9em; }
img { max-width: 100%; height: auto; }
.missing { color: #a00; } .muted { color: #666; font-size: 0.9em; }
code, pre { background: #f4f4f4; } pre { padding: 0.5em; overflow-x: auto; }
"""


def _url(relative):
    return html.escape(urllib.parse.quote(relative), quote=True)


def _is_number(cell):
    try:
        float(re.sub(r' ?(h|min|s|MiB)$', '', cell).replace(',', ''))
    except ValueError:
        return False
    return True


def _table(rows, header=None):
    parts = ['<table>']
    if header:
        parts.append('<tr>{}</tr>'.format(''.join('<th>{}</th>'.format(html.escape(h))
                                                  for h in header)))
    for row in rows:
        parts.append('<tr>{}</tr>'.format(''.join(
            '<td class="num">{}</td>'.format(html.escape(cell))
            if _is_number(cell)
            else '<td>{}</td>'.format(html.escape(cell)) for cell in row)))
    parts.append('</table>')
    return '\n'.join(parts)


def _value(value):
    if isinstance(value, (list, tuple)):
        return ', '.join(str(v) for v in value) if value else '-'
    if isinstance(value, dict):
        return json.dumps(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return format_number(value, 6)
    return '-' if value is None else str(value)


def _key_value_table(mapping):
    return _table([(str(key), _value(value)) for key, value in mapping.items()])


def _model_section(summary):
    parts = ['<p>{:,} parameters (weights, biases, BatchNormalization gamma and beta); '
             'latent variable {} (the activation of the last encoder box, highlighted); '
             'input {}.  Each box is convolution, activation, then BatchNormalization.</p>'
             .format(summary['parameters'], html.escape(format_shape(summary.get('latent_shape'))),
                     html.escape(format_shape(summary.get('input_shape'))))]
    try:
        net_class = runs.net_class(summary['net'])
        rows = layer_rows(net_class, summary.get('input_shape') or (1, 32, 256))
    except (runs.RunError, AttributeError, TypeError, ValueError) as e:
        parts.append('<p class="missing">layer table unavailable: {}</p>'.format(
            html.escape(str(e))))
        return '\n'.join(parts)
    header = ('box', 'operation', 'out ch', 'ksize', 'stride', 'pad', 'activation',
              'BatchNorm', 'output (C x T x F)')
    lines = ['<table>', '<tr>{}</tr>'.format(''.join('<th>{}</th>'.format(h) for h in header))]
    for row in rows:
        cells = (row['box'], row['op'], str(row['out']), _kernel(row['ksize']),
                 _kernel(row['stride']), _kernel(row['pad']), row['activation'],
                 'yes' if row['batch_norm'] else 'no', format_shape(row['output']))
        lines.append('<tr{}>{}</tr>'.format(
            ' class="latent"' if row['latent'] else '',
            ''.join('<td>{}</td>'.format(html.escape(c)) for c in cells)))
    lines.append('</table>')
    parts.append('\n'.join(lines))
    parts.append('<p class="muted">from <code>{}</code></p>'.format(html.escape(summary['net'])))
    return '\n'.join(parts)


def _figure(folder, relative, caption):
    if not os.path.isfile(os.path.join(folder, relative)):
        return '<p class="missing">{}: not written ({})</p>'.format(
            html.escape(caption), html.escape(relative))
    return ('<figure><img src="{}" alt="{}"><figcaption>{}</figcaption></figure>'.format(
        _url(relative), html.escape(caption, quote=True), html.escape(caption)))


def _audio_table(folder, sub):
    rows = []
    for name, caption in AUDIO:
        relative = '/'.join(filter(None, (sub, name)))
        if os.path.isfile(os.path.join(folder, relative)):
            player = '<audio controls preload="none" src="{}"></audio>'.format(_url(relative))
        else:
            player = '<span class="missing">not written</span>'
        rows.append('<tr><td>{}</td><td>{}</td><td><a href="{}">{}</a></td></tr>'.format(
            html.escape(caption), player, _url(relative), html.escape(relative)))
    return '<table>\n{}\n</table>'.format('\n'.join(rows))


def _results_section(folder, summary, metrics):
    rows = [
        ('training time', format_duration(summary.get('training_hours'))),
        ('epochs', _value(summary.get('epochs_completed'))),
        ('iterations', _value(summary.get('iterations'))),
        ('final training MSE', format_number(summary.get('final_training_mse'))),
        ('final validation MSE', format_number(summary.get('final_validation_mse'))),
    ]
    if summary.get('peak_gpu_memory_mib') is not None:
        rows.append(('peak GPU memory', '{} MiB'.format(summary['peak_gpu_memory_mib'])))
    parts = [_table(rows)]
    if metrics:
        parts.append('<h3>Audio metrics (<a href="{0}">{0}</a>)</h3>'.format(EVALUATION))
        parts.append(_table([(key, format_number(value)) for key, value in metrics.items()]))
    return '\n'.join(parts)


def render(folder):
    """The page of a finished results folder, as a string."""
    summary = runs.load_summary(folder)
    runs.load_log(folder)  # a finished run has its log: refuse a folder without one
    metrics = evaluation_metrics(folder)
    texts = experiment_texts(summary['experiment'])
    title = texts['title']
    sections = []

    def section(anchor, heading, body):
        sections.append('<section id="{}">\n<h2>{}</h2>\n{}\n</section>'.format(
            anchor, html.escape(heading), body))

    section('purpose', 'Purpose', markdown_to_html(texts['purpose'])
            or '<p class="muted">no purpose written in {}/README.md</p>'.format(
                html.escape(summary['experiment'])))
    section('model', 'Model', _model_section(summary))
    training = dict(summary.get('hyperparameters', {}))
    section('training-parameters', 'Training parameters',
            _key_value_table(training)
            + '<h3>Dataset</h3>\n' + _key_value_table(summary.get('dataset', {}))
            + '<p>command: <code>{}</code></p>'.format(html.escape(summary.get('command', '-'))))
    environment = {'device': summary.get('device'), 'gpu': summary.get('gpu')}
    environment.update(summary.get('environment', {}))
    section('environment', 'Environment', _key_value_table(environment))
    section('results', 'Results', _results_section(folder, summary, metrics))
    analysis = latent_measures.read_analysis(folder)  # python -m common.latent analyze
    if analysis is not None:
        section('latent', 'Latent', _table(latent_measures.page_rows(analysis)) + _figure(
            folder, latent_measures.FIGURE, 'scree, truncation curve and voice map of the latent'))
    section('learning-curve', 'Learning curve',
            _figure(folder, 'loss.png', 'training and validation MSE per epoch'))
    spectrograms = []
    audio = []
    for sub, what in PREVIEWS:
        spectrograms.append('<h3>{}</h3>\n{}'.format(
            html.escape(what), '\n'.join(
                _figure(folder, '/'.join(filter(None, (sub, name))), '{}: {}'.format(role, what))
                for name, role in (('spectrogram_input.png', 'input'),
                                   ('spectrogram_output.png', 'output')))))
        audio.append('<h3>{}</h3>\n{}'.format(html.escape(what), _audio_table(folder, sub)))
    section('spectrograms', 'Spectrograms', '\n'.join(spectrograms))
    section('audio', 'Audio', '\n'.join(audio))
    if texts['remarks']:
        section('remarks', 'Remarks', markdown_to_html(texts['remarks']))
    files = [name for name in ('summary.json', 'log', EVALUATION, latent_measures.FILENAME)
             if os.path.isfile(os.path.join(folder, name))]
    footer = ('<p class="muted">files: {}; page written {} by '
              '<code>python -m common.report</code></p>').format(
        ', '.join('<a href="{0}">{0}</a>'.format(_url(name)) for name in files),
        datetime.datetime.now().isoformat(timespec='seconds'))
    return '\n'.join([
        '<!DOCTYPE html>', '<html lang="en">', '<head>', '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<title>{}</title>'.format(html.escape(title)), '<style>{}</style>'.format(STYLE),
        '</head>', '<body>', '<h1>{}</h1>'.format(html.escape(title)),
        '<p class="muted">results folder of experiment {}, finished {}</p>'.format(
            html.escape(summary['experiment']), html.escape(str(summary.get('finished', '-')))),
        *sections, footer, '</body>', '</html>', ''])


def write_report(folder):
    """Write ``folder``/index.html (atomically) and return its path; RunError if not finished."""
    page = render(folder)
    path = os.path.join(folder, INDEX)
    try:
        with files.atomic_write(path, 'w', encoding='utf-8') as f:
            f.write(page)
    except OSError as e:  # a read-only copy of someone's folder, a full disk
        raise runs.RunError('cannot write {} ({})'.format(path, e.strerror or e))
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog='python -m common.report',
        description='Write index.html, the HTML page of a finished results folder.')
    parser.add_argument('folders', nargs='+', metavar='FOLDER', help='results folder(s)')
    args = parser.parse_args(argv)
    try:
        for folder in args.folders:
            print(write_report(folder))
    except runs.RunError as e:
        print('{}: error: {}'.format(parser.prog, e), file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
