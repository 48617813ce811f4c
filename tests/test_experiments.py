"""Each experiment's train.py builds the Trainer of its record (SPEC.md, "Training and results").

The records' values are written out here, independently of the train.py files, so a change to
an experiment's training (or to common/ under it) that alters its record fails this test.
"""
import json

import chainer
import numpy
import pytest

from conftest import load_experiment_module, run_experiment
from common import dataset, objectives

#: SPEC.md: RMSprop lr 1e-5 (alpha 0.99, eps 1e-8), MSE, 200 epochs; minibatch 50 / 100.
RECORDS = {
    'bc7db4a2': dict(batchsize=50, epoch=200, lr=1e-5, parameters=102054657),
    'c9335bce': dict(batchsize=100, epoch=200, lr=1e-5, parameters=3323649),
}
#: The extensions of a record's run, in the order train.py adds them.
EXTENSIONS = ['run', 'StopOnNonFinite', 'snapshot_on_interrupt', 'validation', '_Snapshot',
              'observe_lr',
              'LogReport', 'PlotReport', 'PrintReport', 'ProgressBar', 'preview']


@pytest.fixture(scope='module')
def corpus():
    return dataset.load_corpus(dataset.DEMO_CORPUS, log=lambda message: None)


@pytest.mark.parametrize('experiment_id', sorted(RECORDS))
def test_train_py_builds_the_trainer_of_its_record(experiment_id, corpus, tmp_path):
    record = RECORDS[experiment_id]
    train = load_experiment_module(experiment_id, 'train')
    args = train.parse_args(['--out', str(tmp_path)])
    trainer = train.make_trainer(args, corpus, chainer.get_device('@numpy'))

    assert (trainer.stop_trigger.period, trainer.stop_trigger.unit) == (record['epoch'], 'epoch')
    assert trainer.updater.get_iterator('main').batch_size == record['batchsize']
    optimizer = trainer.updater.get_optimizer('main')
    assert type(optimizer) is chainer.optimizers.RMSprop
    assert optimizer.lr == record['lr']
    assert (optimizer.alpha, optimizer.eps, optimizer.eps_inside_sqrt) == (0.99, 1e-8, False)
    model = optimizer.target
    assert type(model) is objectives.Reconstruction
    assert model.predictor.count_params() == record['parameters']
    assert list(trainer._extensions) == EXTENSIONS
    assert trainer.get_extension('snapshot_on_interrupt').snapshot is \
        trainer.get_extension('_Snapshot')


def test_the_objective_is_the_mean_squared_error_of_the_reconstruction():
    class Halve(chainer.Link):
        def forward(self, x):
            return x / 2

    x = numpy.arange(6, dtype=numpy.float32).reshape(1, 1, 2, 3)
    observation = {}
    model = objectives.Reconstruction(Halve())
    reporter = chainer.Reporter()
    reporter.add_observer('main', model)
    with reporter.scope(observation):
        loss = model(x)
    assert float(loss.array) == pytest.approx(numpy.mean((x / 2 - x) ** 2))
    assert float(observation['main/loss'].array) == float(loss.array)


def test_lr_decay_epochs_step_the_rate_in_the_log_and_resume_with_it(tmp_path):
    """--lr-decay-epochs 1: epoch 1 at --lr, epoch 2 at --lr x factor; summary keeps both."""
    out = tmp_path / 'run'
    flags = ['--gpu', '-1', '--epoch', '2', '--batchsize', '2', '--excerpts-per-epoch', '4',
             '--validation-excerpts', '2', '--lr', '1e-3', '--lr-decay-epochs', '1',
             '--lr-decay-factor', '0.5', '--out', str(out)]
    result = run_experiment('c9335bce', *flags)
    assert result.returncode == 0, result.stderr[-2000:]
    log = json.loads((out / 'log').read_text())
    assert [entry['lr'] for entry in log] == pytest.approx([1e-3, 5e-4])
    summary = json.loads((out / 'summary.json').read_text())['hyperparameters']
    assert (summary['lr'], summary['lr_decay_epochs'], summary['lr_decay_factor']) == \
        (1e-3, [1], 0.5)
    # Continued for a third epoch: the schedule's state came back from the snapshot.
    result = run_experiment('c9335bce', *flags[:3], '3', *flags[4:], '--resume')
    assert result.returncode == 0, result.stderr[-2000:]
    log = json.loads((out / 'log').read_text())
    assert [entry['lr'] for entry in log] == pytest.approx([1e-3, 5e-4, 5e-4])


@pytest.mark.parametrize('bad', ['0', '3,2', 'x'])
def test_bad_lr_decay_epochs_are_refused(bad):
    result = run_experiment('c9335bce', '--lr-decay-epochs', bad)
    assert result.returncode == 2 and 'lr-decay-epochs' in result.stderr


def test_a_snapshot_resumes_with_an_extension_it_did_not_have(tmp_path):
    """A run trained without --lr-decay-epochs, continued with it: the new extension's trigger
    has no state in the snapshot, which Chainer tolerates (a KeyError it warns about) and the
    safe loader must not turn into a refusal; parameters missing would still be refused."""
    out = tmp_path / 'run'
    flags = ['--gpu', '-1', '--batchsize', '2', '--excerpts-per-epoch', '4',
             '--validation-excerpts', '2', '--lr', '1e-3', '--out', str(out)]
    result = run_experiment('c9335bce', *flags, '--epoch', '2')
    assert result.returncode == 0, result.stderr[-2000:]
    # A schedule the run did not train with: --force (else refused, tests/test_results_folder).
    result = run_experiment('c9335bce', *flags, '--epoch', '3', '--lr-decay-epochs', '2',
                            '--lr-decay-factor', '0.5', '--resume', '--force')
    assert result.returncode == 0, result.stderr[-2000:]
    log = json.loads((out / 'log').read_text())
    assert [entry['lr'] for entry in log] == pytest.approx([1e-3, 1e-3, 5e-4])
    changed = json.loads((out / 'summary.json').read_text())['hyperparameters'][
        'changed_on_resume']
    assert changed == [{'iteration': 4, 'lr_decay_epochs': [[], [2]],
                        'lr_decay_factor': [0.1, 0.5]}]
