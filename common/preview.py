"""The record's figures and audio, written while training runs (cf. Chainer's DCGAN visualize.py).

For each preview sample (a fixed validation excerpt, and the real recorded utterance that
pysptk ships) the extension writes into its folder:

- ``spectrogram_input.png``, ``spectrogram_output.png``: the record's two images;
- ``input.wav``: the audio the input spectrogram was computed from;
- ``input_griffinlim.wav``: Griffin-Lim of the *input* spectrogram (what phase
  reconstruction alone loses);
- ``output.wav``: Griffin-Lim of the AutoEncoder's output (what the network loses on top).

Those files always hold the latest preview.  The preview history keeps what changes from one
preview to the next, the output image and audio (:data:`HISTORY_FILES`; the input files depend on
the input alone), of every preview under ``previews/epoch_<N>/`` (the same sample folders
inside), so that a run's page can play how the output evolved (:func:`history`).  It is bounded:
previews at multiples of ``interval * 2**k``, the smallest such spacing that keeps at most
:data:`HISTORY_KEPT`, and the latest preview (:func:`history_kept`).  The record's schedule
(200 epochs, a preview every 10) keeps all 20 previews, epochs 10 to 200; README.md gives their
size.
"""
import os
import re
import shutil

import numpy

import common  # noqa: F401
from chainer.training import extension

from common import audio, inference, plot
from common import spectrogram as sp

#: The preview history's folder in a results folder, and its sub-folders' names.
HISTORY = 'previews'
HISTORY_EPOCH = re.compile(r'epoch_([0-9]{1,9})')
#: Most evenly spaced previews the history keeps (and the latest besides).
HISTORY_KEPT = 20
#: The files of a preview folder that change from one preview to the next.
HISTORY_FILES = ('spectrogram_output.png', 'output.wav')


class PreviewSample:
    """A named input: the wave at 16 kHz and its (T, 256) spectrogram."""

    def __init__(self, folder, title, wave, spectrogram):
        self.folder = folder
        self.title = title
        self.wave = numpy.asarray(wave, dtype=numpy.float32)
        self.spectrogram = numpy.asarray(spectrogram, dtype=numpy.float32).reshape(-1, sp.BINS)


def utterance_sample(path, folder='utterance', title=None):
    """A whole recording as a preview sample: min-max scaled as a whole (SPEC step 2)."""
    scaled, _ = sp.normalize_batch(audio.load(path)[None])
    return PreviewSample(folder, title or os.path.basename(path), scaled[0],
                         sp.utterance_to_spectrogram(scaled[0], scale=False))


def pysptk_sample():
    """The real recorded utterance (CMU ARCTIC a0007) that pysptk ships."""
    import pysptk.util
    return utterance_sample(pysptk.util.example_audio_file(), 'utterance',
                            'CMU ARCTIC a0007 (pysptk)')


def samples(validation):
    """The record's previews: validation excerpt 0 (results folder) and the real utterance."""
    return [PreviewSample('', 'validation excerpt 0', validation.excerpt(0), validation[0]),
            pysptk_sample()]


class Preview(extension.Extension):
    """Write spectrogram images and audio of ``samples`` into ``trainer.out``, and keep them in
    the preview history (``interval``: the epochs between previews, which spaces the history).

    ``written_epoch`` is the epoch of the latest preview this process wrote (None before the
    first): extensions that run after it in the same iteration (common.tensorboard) read it.
    """
    priority = extension.PRIORITY_READER

    def __init__(self, model, samples, device, interval=1, griffin_lim_iterations=100):
        self.model = model
        self.samples = samples
        self.device = device
        self.interval = interval
        self.griffin_lim_iterations = griffin_lim_iterations
        self.written_epoch = None
        self._inputs_written = False

    def __call__(self, trainer):
        epoch = trainer.updater.epoch
        self.write(trainer.out, 'epoch {}'.format(epoch))
        self.keep(trainer.out, epoch)
        self.written_epoch = epoch

    def keep(self, out, epoch):
        """Copy the preview just written into ``previews/epoch_<epoch>/`` (replacing one of an
        earlier attempt at this epoch) and remove the history's previews that
        :func:`history_kept` no longer keeps (and any past ``epoch``: a run resumed from an
        earlier snapshot has left their timeline)."""
        root = os.path.join(out, HISTORY)
        os.makedirs(root, exist_ok=True)
        for name in os.listdir(root):  # a copy that a killed process left half-written
            if name.startswith('.epoch_') and name.endswith('.tmp'):
                _remove_tree(os.path.join(root, name))
        temporary = os.path.join(root, '.epoch_{}.tmp'.format(epoch))
        for sample in self.samples:
            folder = os.path.join(temporary, sample.folder)
            os.makedirs(folder, exist_ok=True)
            for name in HISTORY_FILES:
                shutil.copyfile(os.path.join(out, sample.folder, name), os.path.join(folder, name))
        target = os.path.join(root, 'epoch_{}'.format(epoch))
        _remove_tree(target)
        os.replace(temporary, target)  # the epoch's folder appears complete, or not at all
        present = history_epochs(out)
        kept = set(history_kept(present, epoch, self.interval))
        for old in present:
            if old not in kept:
                _remove_tree(os.path.join(root, 'epoch_{}'.format(old)))

    def write(self, out, when=''):
        for sample in self.samples:
            folder = os.path.join(out, sample.folder)
            os.makedirs(folder, exist_ok=True)
            output = inference.autoencode(self.model, sample.spectrogram, self.device)
            if not self._inputs_written:
                self._write_input(folder, sample)
            plot.save_spectrogram(os.path.join(folder, 'spectrogram_output.png'), output,
                                  'output: {} ({})'.format(sample.title, when))
            audio.save(os.path.join(folder, 'output.wav'),
                       sp.to_wave(output, n_iter=self.griffin_lim_iterations))
        self._inputs_written = True

    def _write_input(self, folder, sample):
        """The input's files depend on the input alone: written once per process."""
        plot.save_spectrogram(os.path.join(folder, 'spectrogram_input.png'),
                              sample.spectrogram, 'input: ' + sample.title)
        audio.save(os.path.join(folder, 'input.wav'), sample.wave)
        audio.save(os.path.join(folder, 'input_griffinlim.wav'),
                   sp.to_wave(sample.spectrogram, n_iter=self.griffin_lim_iterations))


def history_kept(epochs, latest, interval, kept=HISTORY_KEPT):
    """The epochs of the preview history to keep once the preview of ``latest`` is written.

    Among ``epochs`` (those in the history), the multiples of the spacing ``interval * 2**k``
    with the smallest k for which at most ``kept`` multiples lie in 1..latest, and ``latest``;
    none past ``latest``.  The spacing only grows as a run goes on, so what is removed is never
    needed again: at most ``kept + 1`` previews, evenly spaced over the run.
    """
    spacing = max(1, int(interval))
    while latest // spacing > kept:
        spacing *= 2
    return sorted({e for e in epochs if e <= latest and e % spacing == 0} | {latest})


def history_epochs(out):
    """The epochs of the previews in ``out``'s history (folders ``previews/epoch_<N>``)."""
    try:
        names = os.listdir(os.path.join(out, HISTORY))
    except OSError:
        return []
    return sorted(int(match.group(1)) for match in map(HISTORY_EPOCH.fullmatch, names)
                  if match and _is_folder(os.path.join(out, HISTORY, match.group(0))))


def history(out, sample_folders):
    """The preview history of a results folder, oldest first: one dict per kept preview,
    ``{'epoch': N, 'files': {(sample folder, file name): path relative to out}}``, listing the
    :data:`HISTORY_FILES` of each of ``sample_folders`` that exist as regular files (a results
    folder may come from elsewhere: links are not followed)."""
    entries = []
    for epoch in history_epochs(out):
        found = {}
        for sub in sample_folders:
            for name in HISTORY_FILES:
                relative = '/'.join(filter(None, (HISTORY, 'epoch_{}'.format(epoch), sub, name)))
                path = os.path.join(out, *relative.split('/'))
                if os.path.isfile(path) and not os.path.islink(path):
                    found[(sub, name)] = relative
        if found:
            entries.append({'epoch': epoch, 'files': found})
    return entries


def _is_folder(path):
    return os.path.isdir(path) and not os.path.islink(path)


def _remove_tree(path):
    """Remove a history folder (or a link or file in its place); nothing if absent."""
    if os.path.islink(path) or os.path.isfile(path):
        os.remove(path)
    elif os.path.isdir(path):
        shutil.rmtree(path)
