"""TensorBoard event files of a run: while it trains (``--tensorboard``), and of finished results
folders (``python -m common.tensorboard RESULTS...``).

Training with ``--tensorboard`` adds :class:`TensorBoardReport` to the Trainer (rank 0 only under
ChainerMN: it sits with the other writers of the results folder).  It writes into
``<out>/tensorboard/``, with the epoch as the step:

- every LogReport entry as scalars, under the log's own keys (``main/loss``,
  ``validation/main/loss``, ``elapsed_time``, ``lr``, ``iteration``);
- at each preview (common/preview.py), the files the preview has just written, as they are:
  the output spectrogram image and ``output.wav`` of each preview sample (tags
  ``excerpt/...`` for the validation excerpt, ``utterance/...`` for the recorded utterance)
  and, at the first preview of each training process, the input image, ``input.wav`` and
  ``input_griffinlim.wav``, which depend on the input alone;
- at each preview, histograms of the latent variables of each preview sample (``latent/...``);
- at the first preview, every :data:`EMBEDDING_EVERY`-th and the last, an embedding for
  TensorBoard's projector: the latents of the validation excerpts (at most
  :data:`MAX_EMBEDDED`), averaged over time (4096 values an excerpt for bc7db4a2, 1024 x 9 for
  c9335bce), labelled by voice (:func:`voices`).

``--resume`` continues the same event stream: the extension's snapshot state is the last epoch
it wrote, and the resumed writer starts with TensorBoard's purge mark at the next step
(``purge_step``), so whatever a killed process wrote past its snapshot is dropped by
TensorBoard, and every step appears once.  The projector's files past that epoch are removed.

``python -m common.tensorboard RESULTS...`` writes the same for finished results folders from
their files: the log, the preview history (``previews/epoch_<N>/``; a folder without one gets
its latest preview at its last epoch), and the numbers of ``evaluation.json`` and
``latent_analysis.json`` as scalars at the last epoch (``evaluation/...``,
``latent_analysis/...``).  Its events go to a file of their own (suffix :data:`FINISHED`), which
the command replaces when run again.  A folder trained with ``--tensorboard`` keeps its
training stream: the command adds only the metrics to it.  ``tensorboard --logdir results``
then shows every run side by side.

Images and audio go into the event files as the bytes of the PNG and WAV files, so TensorBoard
plays exactly what the preview wrote.  Results folders may come from elsewhere: each file is
read bounded (:func:`common.files.read_regular`) and checked to be a PNG or a WAV.
"""
import argparse
import io
import math
import os
import re
import struct
import sys

import numpy

import common  # noqa: F401
from chainer.training import extension

from common import files, inference, preview, runs
from common.cli import UsageError

#: Where the event files go in a results folder.
LOGDIR = 'tensorboard'
#: What to install for ``--tensorboard`` (tensorboardX writes, tensorboard serves).
INSTALL = "pip install -e '.[tensorboard]'"
#: The suffix of the event files that ``python -m common.tensorboard`` writes.
FINISHED = '.results'
#: An embedding at the first preview, every this many previews, and the last.
EMBEDDING_EVERY = 10
#: The most validation excerpts an embedding holds (200 by default; each a row of text).
MAX_EMBEDDED = 500
EMBEDDING = 'validation_latents'
#: Equal-width bins between the smallest and the largest latent value (TensorBoard re-bins).
HISTOGRAM_BINS = 64
#: The tag prefix of each preview sample folder (common/preview.py's ``samples``).
SAMPLE_TAGS = {'': 'excerpt', 'utterance': 'utterance'}
#: The preview files, tag suffix and kind: what changes from preview to preview, then inputs.
OUTPUTS = (('spectrogram_output.png', 'spectrogram_output'), ('output.wav', 'output'))
INPUTS = (('spectrogram_input.png', 'spectrogram_input'), ('input.wav', 'input'),
          ('input_griffinlim.wav', 'input_griffinlim'))
MAX_IMAGE_BYTES = 16 * 2 ** 20
MAX_AUDIO_BYTES = 64 * 2 ** 20  # half an hour of 16 kHz 16-bit mono
MAX_METRICS_BYTES = 2 ** 20
METRICS = ('evaluation.json', 'latent_analysis.json')
PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
PNG_CHANNELS = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}  # colour type -> channels


def require(what='--tensorboard'):
    """The tensorboardX module; UsageError saying what to install when it is missing."""
    try:
        import tensorboardX
    except ImportError as error:
        raise UsageError('{} needs tensorboardX, which cannot be imported ({}); install it '
                         'with {}'.format(what, ' '.join(str(error).split()), INSTALL))
    return tensorboardX


class TensorBoardFlag(argparse.Action):
    """``--tensorboard`` (no value): refused while parsing when tensorboardX is missing, so a run
    stops before it touches its results folder."""

    def __init__(self, option_strings, dest, default=False, required=False, help=None):
        super().__init__(option_strings, dest, nargs=0, default=default, required=required,
                         help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        require()
        setattr(namespace, self.dest, True)


# -- what goes into the events ---------------------------------------------------------------

def voices(corpus, validation):
    """(voice, file) of each validation excerpt (``validation.locations``: (file index, offset)
    in ``corpus.validation_files``), the file relative to the corpus folder.  The voice is the
    file's first folder there (the demo corpus's voice folders; JVS and LibriSpeech name
    speakers there too), '(top level)' for a file in the corpus folder itself."""
    labels = []
    for file_index, _ in validation.locations:
        relative = os.path.relpath(corpus.validation_files[int(file_index)], corpus.root)
        parts = relative.split(os.sep)
        labels.append((parts[0] if len(parts) > 1 else '(top level)', '/'.join(parts)))
    return labels


def png_summary(tag, data, path):
    """A Summary holding the PNG file's bytes as they are (its size read from its header)."""
    from tensorboardX.proto.summary_pb2 import Summary
    if data[:8] != PNG_SIGNATURE or data[12:16] != b'IHDR' or len(data) < 33:
        raise runs.RunError('{}: not a PNG image'.format(path))
    width, height = struct.unpack('>II', data[16:24])
    channels = PNG_CHANNELS.get(data[25])
    if not width or not height or channels is None:
        raise runs.RunError('{}: not a PNG image (bad header)'.format(path))
    return Summary(value=[Summary.Value(tag=tag, image=Summary.Image(
        height=height, width=width, colorspace=channels, encoded_image_string=data))])


def wav_summary(tag, data, path):
    """A Summary holding the WAV file's bytes as they are (TensorBoard plays them)."""
    import soundfile
    from tensorboardX.proto.summary_pb2 import Summary
    try:
        info = soundfile.info(io.BytesIO(data))
    except (soundfile.SoundFileError, RuntimeError, TypeError, ValueError) as error:
        raise runs.RunError('{}: not readable as audio ({})'.format(
            path, ' '.join(str(error).split())))
    if info.format != 'WAV' or info.frames < 1:
        raise runs.RunError('{}: not a WAV file with samples ({})'.format(path, info.format))
    return Summary(value=[Summary.Value(tag=tag, audio=Summary.Audio(
        sample_rate=info.samplerate, num_channels=info.channels, length_frames=info.frames,
        encoded_audio_string=data, content_type='audio/wav'))])


def file_summary(tag, path):
    """The Summary of one preview file (.png or .wav), read bounded; RunError if unusable."""
    image = path.endswith('.png')
    try:
        data = files.read_regular(path, MAX_IMAGE_BYTES if image else MAX_AUDIO_BYTES)
    except files.FileRefused as error:
        raise runs.RunError(str(error))
    except OSError as error:
        raise runs.RunError('{}: cannot read ({})'.format(path, error.strerror or error))
    return (png_summary if image else wav_summary)(tag, data, path)


def preview_summaries(out, epoch, sample_folders, inputs):
    """The Summaries of the preview of ``epoch``: each sample's outputs from its history folder
    (``previews/epoch_<N>/``, or the current files when ``epoch`` has none) and, with
    ``inputs``, the current input files.  Only files that exist are taken."""
    history = os.path.join(out, preview.HISTORY, 'epoch_{}'.format(epoch))
    summaries = []
    for sub in sample_folders:
        tag = SAMPLE_TAGS.get(sub, sub)
        wanted = [(os.path.join(history if os.path.isdir(history) else out, sub, name), suffix)
                  for name, suffix in OUTPUTS]
        if inputs:
            wanted += [(os.path.join(out, sub, name), suffix) for name, suffix in INPUTS]
        for path, suffix in wanted:
            if os.path.lexists(path):
                summaries.append(file_summary('{}/{}'.format(tag, suffix), path))
    return summaries


def scalar_summaries(entry):
    """Summaries of a LogReport entry's numbers, tagged by their keys (step: its epoch)."""
    from tensorboardX import summary
    return [summary.scalar(key, value) for key, value in entry.items()
            if key != 'epoch' and isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value)]


def flatten_numbers(data, prefix=''):
    """The finite numbers of nested JSON objects, keyed 'prefix/a/b' (lists and texts left out)."""
    found = {}
    if isinstance(data, dict):
        for key, value in data.items():
            name = '{}/{}'.format(prefix, key) if prefix else str(key)
            if isinstance(value, dict):
                found.update(flatten_numbers(value, name))
            elif (isinstance(value, (int, float)) and not isinstance(value, bool)
                  and math.isfinite(value)):
                found[name] = value
    return found


def write_embedding(logdir, step, matrix, labels):
    """The projector's files of one embedding (``<step>/<EMBEDDING>/tensors.tsv`` and
    ``metadata.tsv``), then ``projector_config.pbtxt`` listing every embedding present."""
    folder = os.path.join(logdir, '{:05d}'.format(step), EMBEDDING)
    os.makedirs(folder, exist_ok=True)
    with files.atomic_write(os.path.join(folder, 'tensors.tsv'), 'w', encoding='utf-8') as f:
        for row in matrix:
            f.write('\t'.join('%.3g' % value for value in row) + '\n')
    with files.atomic_write(os.path.join(folder, 'metadata.tsv'), 'w', encoding='utf-8') as f:
        f.write('voice\tfile\n')
        for row in labels:
            f.write('\t'.join(re.sub(r'[\t\r\n]', ' ', str(cell)) for cell in row) + '\n')
    write_projector_config(logdir)


def embedding_steps(logdir):
    """The steps of the embeddings in ``logdir`` (folders ``<5 digits>/<EMBEDDING>/``)."""
    try:
        names = os.listdir(logdir)
    except OSError:
        return []
    return sorted(int(name) for name in names if re.fullmatch(r'[0-9]{5,9}', name)
                  and os.path.isfile(os.path.join(logdir, name, EMBEDDING, 'tensors.tsv')))


def write_projector_config(logdir):
    entries = []
    for step in embedding_steps(logdir):
        folder = '{:05d}/{}'.format(step, EMBEDDING)
        entries.append('embeddings {{\n  tensor_name: "{0}:{1:05d}"\n  tensor_path: "{2}/'
                       'tensors.tsv"\n  metadata_path: "{2}/metadata.tsv"\n}}\n'
                       .format(EMBEDDING, step, folder))
    path = os.path.join(logdir, 'projector_config.pbtxt')
    if entries:
        with files.atomic_write(path, 'w', encoding='utf-8') as f:
            f.write(''.join(entries))
    elif os.path.exists(path):
        os.remove(path)


def remove_embeddings_after(logdir, step):
    """Remove the projector's embeddings past ``step`` (a timeline that a resume has left)."""
    import shutil
    removed = [s for s in embedding_steps(logdir) if s > step]
    for later in removed:
        shutil.rmtree(os.path.join(logdir, '{:05d}'.format(later)))
    if removed:
        write_projector_config(logdir)


# -- while training --------------------------------------------------------------------------

class TensorBoardReport(extension.Extension):
    """Write the run's scalars, previews, latent histograms and embeddings into
    ``<out>/tensorboard/`` (the module's docstring says what, and how ``--resume`` continues).

    ``validation``: the run's ValidationExcerpts; ``labels``: (voice, file) of each excerpt
    (:func:`voices`).  It runs every epoch after LogReport and Preview (common/preview.py), whose
    model, device, samples and interval it uses, and reads the files the preview has just
    written.
    """
    priority = extension.PRIORITY_READER - 10  # after LogReport and Preview of the same epoch

    def __init__(self, validation, labels, logdir=LOGDIR):
        # At the end of every epoch; a trigger without state, so that a snapshot of a run
        # without --tensorboard (no state of this extension or its trigger) resumes with it.
        self.trigger = _end_of_epoch
        self.validation = validation
        self.labels = labels
        self.logdir = logdir
        self.written_epoch = 0  # the last epoch in the event stream; in every snapshot
        self._writer = None
        self._inputs_written = False

    def serialize(self, serializer):
        try:
            self.written_epoch = int(serializer('written_epoch', self.written_epoch))
        except (KeyError, ValueError):  # (common.npz: NpzError, a ValueError) no such entry:
            self.written_epoch = 0      # a snapshot of a run without --tensorboard

    def initialize(self, trainer):
        tensorboardX = require()
        logdir = os.path.join(trainer.out, self.logdir)
        os.makedirs(logdir, exist_ok=True)
        remove_embeddings_after(logdir, self.written_epoch)
        self._writer = tensorboardX.FileWriter(logdir, flush_secs=30)
        # TensorBoard's restart mark: earlier events of this step and later are dropped.
        from tensorboardX.proto.event_pb2 import Event, SessionLog
        step = self.written_epoch + 1
        self._writer.add_event(Event(step=step, file_version='brain.Event:2'))
        self._writer.add_event(Event(step=step, session_log=SessionLog(status=SessionLog.START)))

    def __call__(self, trainer):
        epoch = trainer.updater.epoch
        for entry in trainer.get_extension('LogReport').log:
            if self.written_epoch < entry['epoch'] <= epoch:
                for summary in scalar_summaries(entry):
                    self._writer.add_summary(summary, entry['epoch'])
        try:
            previews = trainer.get_extension('preview')
        except ValueError:
            previews = None
        if previews is not None and previews.written_epoch == epoch:
            self._write_preview(trainer, previews, epoch)
        self.written_epoch = max(self.written_epoch, epoch)
        self._writer.flush()

    def _write_preview(self, trainer, previews, epoch):
        folders = [sample.folder for sample in previews.samples]
        for summary in preview_summaries(trainer.out, epoch, folders, not self._inputs_written):
            self._writer.add_summary(summary, epoch)
        self._inputs_written = True
        from tensorboardX import summary as summaries
        for sample in previews.samples:
            latents = inference.encode(previews.model, sample.spectrogram, previews.device)
            self._writer.add_summary(summaries.histogram(
                'latent/' + SAMPLE_TAGS.get(sample.folder, sample.folder), latents,
                HISTOGRAM_BINS), epoch)
        count = -(-epoch // max(1, previews.interval))  # this is the count-th preview
        final = getattr(trainer.stop_trigger, 'period', None) \
            if getattr(trainer.stop_trigger, 'unit', None) == 'epoch' else None
        if count == 1 or count % EMBEDDING_EVERY == 0 or epoch == final:
            self._write_embedding(trainer, previews.model, previews.device, epoch)

    def _write_embedding(self, trainer, model, device, epoch):
        count = min(len(self.validation), MAX_EMBEDDED)
        pooled = []
        for start in range(0, count, 16):  # (16, C, T, F) latents at a time, averaged over T
            spectrograms = numpy.asarray(self.validation.spectrograms[start:min(start + 16,
                                                                                count)])
            latents = inference.encode(model, spectrograms.reshape(-1, spectrograms.shape[-1]),
                                       device)  # one block an excerpt
            pooled.append(latents.mean(axis=2).reshape(len(latents), -1))
        write_embedding(os.path.join(trainer.out, self.logdir), epoch, numpy.concatenate(pooled),
                        self.labels[:count])

    def finalize(self):
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _end_of_epoch(trainer):
    return trainer.updater.is_new_epoch


# -- finished results folders ----------------------------------------------------------------

def finished_summaries(folder, sample_folders=tuple(SAMPLE_TAGS)):
    """(step, Summary) pairs of a finished results folder and whether it has a training stream
    (then only the metrics).  Everything is read and checked before anything is written."""
    summary = runs.load_summary(folder)
    log = runs.load_log(folder)
    last = summary.get('epochs_completed') or max(int(entry['epoch']) for entry in log)
    logdir = os.path.join(folder, LOGDIR)
    trained = [name for name in _event_files(logdir) if not name.endswith(FINISHED)]
    pairs = []
    if not trained:
        for entry in log:
            pairs += [(int(entry['epoch']), s) for s in scalar_summaries(entry)]
        epochs = preview.history_epochs(folder) or [last]
        for number, epoch in enumerate(epochs):
            pairs += [(epoch, s) for s in preview_summaries(folder, epoch, sample_folders,
                                                            inputs=number == 0)]
    from tensorboardX import summary as summaries
    for name in METRICS:
        path = os.path.join(folder, name)
        if os.path.lexists(path):
            numbers = flatten_numbers(runs.read_json(path, name, MAX_METRICS_BYTES),
                                      os.path.splitext(name)[0])
            pairs += [(last, summaries.scalar(key, value)) for key, value in numbers.items()]
    return pairs, bool(trained)


def _event_files(logdir):
    try:
        return sorted(name for name in os.listdir(logdir) if name.startswith('events.out.'))
    except OSError:
        return []


def write_finished(folder):
    """Write the event file of a finished results folder (replacing the one this command wrote
    before); returns (its path, the number of summaries, whether a training stream was there)."""
    tensorboardX = require('this command')
    pairs, trained = finished_summaries(folder)
    logdir = os.path.join(folder, LOGDIR)
    try:
        os.makedirs(logdir, exist_ok=True)
        for name in _event_files(logdir):
            if name.endswith(FINISHED):
                os.remove(os.path.join(logdir, name))
        writer = tensorboardX.FileWriter(logdir, filename_suffix=FINISHED)
        for step, summary in pairs:
            writer.add_summary(summary, step)
        writer.close()
    except OSError as error:
        raise runs.RunError('cannot write into {} ({})'.format(logdir, error.strerror or error))
    written = [name for name in _event_files(logdir) if name.endswith(FINISHED)]
    return os.path.join(logdir, written[-1]), len(pairs), trained


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog='python -m common.tensorboard',
        description='Write TensorBoard event files of finished results folders into '
                    'FOLDER/tensorboard/: the log, the preview history and the metrics of '
                    'evaluation.json and latent_analysis.json.  Then: tensorboard --logdir '
                    'results')
    parser.add_argument('folders', nargs='+', metavar='FOLDER', help='finished results folder(s)')
    args = parser.parse_args(argv)
    try:
        require('this command')
    except UsageError as error:
        print('{}: error: {}'.format(parser.prog, error), file=sys.stderr)
        return 2
    status = 0
    for folder in args.folders:  # each on its own: `results/*` may hold a comparison folder
        try:
            path, count, trained = write_finished(folder)
        except (runs.RunError, UsageError) as error:
            print('{}: error: {}'.format(parser.prog, error), file=sys.stderr)
            status = 2
            continue
        print('{}: {} summaries{}'.format(
            path, count, ' (metrics only: the training stream holds the rest)' if trained else ''))
        try:
            from common import report
            report.update_pages(folder)  # the run's page lists its tensorboard/ folder
        except runs.RunError as error:
            print('{}: warning: index.html not rewritten ({})'.format(parser.prog, error),
                  file=sys.stderr)
    return status


if __name__ == '__main__':
    sys.exit(main())
