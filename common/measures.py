"""How a reader names each number the tools write, with its unit: one table for every page.

The run page (:mod:`common.report`), the experiment log and the comparison
(:mod:`common.compare`) show the keys of ``summary.json``, ``evaluation.json`` and the
hyper-parameters by these names.  ``evaluation.json`` (:mod:`common.evaluate`) holds numbers at
the top level and, per rendering, a group of numbers; a flattened key such as
``autoencoder_griffin_lim.mcd_db`` reads "MCD, output through Griffin-Lim" in dB.

A new number slots in by a row here: a new measure of every rendering goes into
:data:`MEASURES` (its order is the order of the pages' rows), a new rendering into
:data:`RENDERINGS`.  A key without a row is still shown, named after itself, with the unit its
suffix says (``_db``, ``_hz``, ``_cents``, ``_percent``, ``_s``).
"""
import collections

#: name: how a reader names it; unit: '' for none; better: 'lower', 'higher' or None (not a
#: quality); digits: significant digits shown; description: one line for a tooltip.
Measure = collections.namedtuple('Measure', 'name unit better digits description')

#: evaluation.json's numbers (common.evaluate, common.metrics states the conventions), in the
#: order the pages show them.  Top-level keys describe the network's output spectrogram.
MEASURES = collections.OrderedDict([
    ('spectrogram_mse', Measure(
        'spectrogram MSE', '', 'lower', 4,
        'mean squared error of the output spectrogram against the input (the training loss)')),
    ('spectrogram_lsd_db', Measure(
        'spectrogram LSD', 'dB', 'lower', 3,
        'log-spectral distance of the output spectrogram against the input')),
    ('mcd_db', Measure(
        'MCD', 'dB', 'lower', 3,
        'mel-cepstral distortion against the input with its true phase (WORLD, order 24)')),
    ('lsd_db', Measure(
        'LSD', 'dB', 'lower', 3, 'log-spectral distance against the input spectrogram')),
    ('spectral_convergence', Measure(
        'spectral convergence', '', 'lower', 3,
        '|| |STFT(wave)| - M || / ||M||, M the input spectrogram\'s magnitudes')),
    ('stoi', Measure(
        'STOI', '', 'higher', 3,
        'short-time objective intelligibility against the input with its true phase (pystoi)')),
    ('estoi', Measure(
        'ESTOI', '', 'higher', 3, 'extended STOI (pystoi, extended=True)')),
    ('pesq_nb', Measure(
        'PESQ (narrowband)', 'MOS-LQO', 'higher', 3,
        'ITU-T P.862 narrowband at 8 kHz against the input with its true phase')),
    ('f0_rmse_cents', Measure(
        'F0 RMSE', 'cents', 'lower', 3, 'pitch error on frames voiced in both (WORLD F0)')),
    ('vuv_error', Measure(
        'V/UV error', '', 'lower', 3, 'fraction of frames whose voicing differs')),
    ('f0_correlation', Measure(
        'F0 correlation', '', 'higher', 3, 'Pearson correlation of F0 on frames voiced in both')),
    ('dnsmos_ovrl_change', Measure(
        'DNSMOS overall, change', '', 'higher', 3,
        'DNSMOS P.835 overall score of the rendering minus the reference\'s (--dnsmos)')),
    ('files', Measure('utterances evaluated', '', None, 4, 'validation utterances measured')),
    ('validation_files', Measure('validation utterances', '', None, 4,
                                 'utterances in the validation split')),
    ('seconds', Measure('audio evaluated', 's', None, 4, 'length of the utterances measured')),
    ('griffin_lim_iterations', Measure('Griffin-Lim iterations', '', None, 4,
                                       'iterations of fast Griffin-Lim')),
])

#: The renderings of common.evaluate: the groups of evaluation.json, in the pages' order.
RENDERINGS = collections.OrderedDict([
    ('griffin_lim_input', 'input through Griffin-Lim'),
    ('autoencoder_griffin_lim', 'output through Griffin-Lim'),
    ('autoencoder_true_phase', 'output with the true phase'),
])

#: The rendering a listener hears: its MCD is the experiment log's "MCD".
HEARD = 'autoencoder_griffin_lim'

#: summary.json's results, in the pages' order: key -> Measure.
RESULTS = collections.OrderedDict([
    ('epochs_completed', Measure('epochs', '', None, 6, 'epochs trained')),
    ('iterations', Measure('iterations', '', None, 6, 'minibatches trained')),
    ('training_hours', Measure('training time', '', None, 3, 'wall-clock training time')),
    ('final_training_mse', Measure('final training MSE', '', 'lower', 4,
                                   'training loss of the last epoch')),
    ('final_validation_mse', Measure('final validation MSE', '', 'lower', 4,
                                     'validation loss after the last epoch')),
    ('peak_gpu_memory_mib', Measure('peak GPU memory in use', 'MiB', None, 6,
                                    'the most GPU memory the run\'s arrays held at once')),
    ('gpu_memory_pool_mib', Measure('CuPy memory pool', 'MiB', None, 6,
                                    'what CuPy\'s pool held from the GPU (in use + cached)')),
    ('gpu_memory_limit_mib', Measure('GPU memory limit', 'MiB', None, 6,
                                     '--gpu-memory-limit: the cap on CuPy\'s pool')),
])

#: summary.json's hyper-parameters (common.results.hyperparameters): key -> reader's name.
HYPERPARAMETERS = collections.OrderedDict([
    ('optimizer', 'optimizer'),
    ('lr', 'learning rate'),
    ('lr_decay_epochs', 'learning rate decayed after epochs'),
    ('lr_decay_factor', 'learning rate decay factor'),
    ('alpha', 'RMSprop alpha'),
    ('eps', 'RMSprop eps'),
    ('eps_inside_sqrt', 'eps inside the square root'),
    ('loss', 'loss'),
    ('epoch', 'epochs asked'),
    ('batchsize', 'minibatch'),
    ('excerpts_per_epoch', 'excerpts per epoch'),
    ('validation_excerpts', 'validation excerpts'),
    ('seed', 'seed'),
    ('preview_interval', 'epochs between previews'),
    ('snapshot_interval', 'epochs between snapshots'),
    ('snapshots_kept', 'snapshots kept'),
    ('changed_on_resume', 'settings changed on --resume'),
])

UNIT_SUFFIXES = (('_db', 'dB'), ('_hz', 'Hz'), ('_cents', 'cents'), ('_percent', '%'),
                 ('_seconds', 's'), ('_s', 's'))


def measure(key):
    """The Measure of a flattened evaluation.json key (``group.leaf`` or ``leaf``)."""
    group, _, leaf = key.rpartition('.')
    known = MEASURES.get(leaf)
    if known is not None:
        return known
    unit = next((unit for suffix, unit in UNIT_SUFFIXES if leaf.endswith(suffix)), '')
    name = leaf
    for suffix, suffix_unit in UNIT_SUFFIXES:
        if suffix_unit == unit and leaf.endswith(suffix):
            name = leaf[:-len(suffix)]
            break
    return Measure(name.replace('_', ' '), unit, None, 4, key)


def group_name(group):
    """A rendering's reader name; an unknown group named after itself."""
    return RENDERINGS.get(group, group.replace('_', ' ').replace('.', ', '))


def name(key):
    """'MCD, output through Griffin-Lim' for ``autoencoder_griffin_lim.mcd_db``."""
    group, _, _ = key.rpartition('.')
    what = measure(key).name
    return '{}, {}'.format(what, group_name(group)) if group else what


def label(key):
    """The name with its unit: 'MCD, output through Griffin-Lim (dB)'."""
    unit = measure(key).unit
    return '{} ({})'.format(name(key), unit) if unit else name(key)


def order(keys):
    """Flattened evaluation keys in the pages' order: top level first, then each rendering in
    RENDERINGS' order; within each, MEASURES' order; unknown keys after the known, as given."""
    keys = list(keys)
    leaves = list(MEASURES)
    groups = [''] + list(RENDERINGS)

    def rank(item):
        index, key = item
        group, _, leaf = key.rpartition('.')
        return (groups.index(group) if group in groups else len(groups),
                leaves.index(leaf) if leaf in leaves else len(leaves), index)

    return [key for _, key in sorted(enumerate(keys), key=rank)]


def hyperparameter_name(key):
    return HYPERPARAMETERS.get(key, key.replace('_', ' '))
