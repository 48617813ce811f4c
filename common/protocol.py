"""The training protocol that the records leave unstated, shared by every experiment.

The records give each experiment's epochs, minibatch, optimizer and learning rate; those stay
in the experiment's own ``train.py``.  How many 1.06 s excerpts make an epoch, how large the
fixed validation set is and how often previews are written are ours, and are the same for all
experiments so that their results folders compare on equal terms (``python -m common.compare``).
"""

#: Not in the records: random excerpts drawn from the corpus per epoch, the fixed validation
#: excerpts, and the epochs between spectrogram/audio previews.
UNRECORDED = dict(
    excerpts_per_epoch=5000,
    validation_excerpts=200,
    preview_interval=10,
)

#: The seeds a run takes (``--seed``, summary.json's ``hyperparameters.seed``): NumPy's global
#: generator, which Chainer's initializers draw from, is seeded with 0 .. 2**32 - 1 only.
SEEDS = range(2 ** 32)
