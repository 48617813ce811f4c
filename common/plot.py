"""Figures: spectrogram images in the record's style, time across and frequency up; every
figure written atomically (:func:`save_figure`)."""
import os

import matplotlib

matplotlib.use('Agg')  # files only; no display on training machines
import matplotlib.pyplot as plt  # noqa: E402
import numpy  # noqa: E402

from common import files  # noqa: E402
from common import spectrogram as sp  # noqa: E402


def save_figure(fig, path, dpi=100, **options):
    """Write a matplotlib figure to ``path`` atomically and close it; ``options`` go to
    ``savefig``.

    A figure is rendered straight into its file, so a crash, Ctrl-C or full disk while it is
    written would leave a truncated PNG where the last good one was; written to a temporary
    file renamed into place (:func:`common.files.atomic_write`), ``path`` holds either.  The
    rename replaces a link at ``path`` itself: nothing is written through it.
    """
    try:
        with files.atomic_write(path) as stream:
            fig.savefig(stream, dpi=dpi, format=os.path.splitext(path)[1][1:] or 'png',
                        **options)
    finally:
        plt.close(fig)


def save_spectrogram(path, spectrogram, title):
    """Write a (T, 256) or (1, T, 256) spectrogram as a PNG with axes in seconds and Hz.

    Values are the record's -ln(|X| / 1024) (step 6): small is loud.  The colour map is
    reversed so that loud bins are bright; the colour bar shows the raw values.
    """
    s = numpy.asarray(spectrogram).reshape(-1, sp.BINS)
    frames = s.shape[0]
    seconds = (frames - 1) * sp.HOP_LENGTH / sp.SAMPLE_RATE + sp.FRAME_LENGTH / sp.SAMPLE_RATE
    bin_hz = sp.SAMPLE_RATE / sp.FRAME_LENGTH
    fig, ax = plt.subplots(figsize=(max(4.0, min(12.0, 3.0 * seconds + 2)), 3.6))
    # interpolation_stage='data': resample values, not colours, so every pixel is on the map.
    image = ax.imshow(s.T, origin='lower', aspect='auto', cmap='magma_r', interpolation_stage='data',
                      vmin=0, vmax=-numpy.log(sp.FLOOR),
                      extent=(0, seconds, 0.5 * bin_hz, (sp.BINS + 0.5) * bin_hz))
    ax.set_xlabel('time [s]')
    ax.set_ylabel('frequency [Hz]')
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label='-ln(|X| / 1024)  (small = loud)')
    fig.tight_layout()
    save_figure(fig, path)
