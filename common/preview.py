"""The record's figures and audio, written while training runs (cf. Chainer's DCGAN visualize.py).

For each preview sample (a fixed validation excerpt, and the real recorded utterance that
pysptk ships) the extension writes into its folder:

- ``spectrogram_input.png``, ``spectrogram_output.png``: the record's two images;
- ``input.wav``: the audio the input spectrogram was computed from;
- ``input_griffinlim.wav``: Griffin-Lim of the *input* spectrogram (what phase
  reconstruction alone loses);
- ``output.wav``: Griffin-Lim of the AutoEncoder's output (what the network loses on top).
"""
import os

import numpy

import common  # noqa: F401
from chainer.training import extension

from common import audio, inference, plot
from common import spectrogram as sp


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
    """Write spectrogram images and audio of ``samples`` into ``trainer.out``."""
    priority = extension.PRIORITY_READER

    def __init__(self, model, samples, device, griffin_lim_iterations=100):
        self.model = model
        self.samples = samples
        self.device = device
        self.griffin_lim_iterations = griffin_lim_iterations
        self._inputs_written = False

    def __call__(self, trainer):
        self.write(trainer.out, 'epoch {}'.format(trainer.updater.epoch))

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
