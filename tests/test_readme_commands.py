"""Every command block of README.md and of the experiment READMEs runs as written, after the
quick start (issue 25, item 4): the README is a contract.

The blocks are read from the READMEs themselves and run in their order, in a copy of this
working tree (tests/conftest.py, ``copy_repository``), so nothing is written here.  Three
kinds of change are made, each listed below and nothing else:

- SUBSTITUTIONS: ``.venv/bin/python`` (and ``mpiexec``) are this environment's; commands that
  train get TINY_TRAINING flags in place of theirs (the same pipeline, in seconds), evaluate
  measures one file; paths under /tmp go under the test's temporary folder; placeholders
  (``<new-id>``, ``[flags]``) get values.
- SKIP_RULES: commands that cannot run here (a GPU, several machines, the network, the test
  suite itself, benchmarks that take minutes by design), each with its reason; a command that
  reads what only a skipped command writes is skipped with that reason too.  The skipped
  commands and their reasons are printed (``pytest -rP``) and the commands that must run are
  asserted to have run (MUST_RUN), so a rule cannot quietly swallow the README.
- A command repeated word for word in a later README (the experiments' shared comparison)
  runs once: run again, the results folder would rightly refuse it.

The READMEs' chains run concurrently where they share nothing (README.md's, and the two
experiment READMEs' under /tmp), which keeps the test near a minute on two cores.
"""
import os
import re
import shlex
import subprocess
import sys
import threading
import time

import pytest

from conftest import REPOSITORY, copy_repository

# Every README command block, in a repository copy: slow, so left out of the quick check
# (README.md: pytest -m "not slow").
pytestmark = pytest.mark.slow

READMES = ('README.md', 'bc7db4a2/README.md', 'c9335bce/README.md')
#: What the commands that train run with: one epoch of one minibatch of 2.
TINY_TRAINING = {'--epoch': '1', '--batchsize': '2', '--excerpts-per-epoch': '2',
                 '--validation-excerpts': '2'}
#: Flags added to commands of a tool, so it does the same work on less data.
TOOL_FLAGS = {'common.evaluate': ['--max-files', '1'],
              'common.latent analyze': ['--max-files', '2', '--truncation-points', '3']}
NEW_ID = 'e0next'  # <new-id> of "Starting the next experiment"
BIN = os.path.dirname(sys.executable)


def _gpu(tokens):
    return any(token in ('--gpu', '-g') and index + 1 < len(tokens)
               and re.fullmatch(r'\d+', tokens[index + 1])
               for index, token in enumerate(tokens))


#: (name, test on the command's tokens, reason).  The first that matches skips the command.
SKIP_RULES = (
    ('environment', lambda t: t[:3] == ['python3', '-m', 'venv'],
     'creates the environment this test already runs in'),
    ('network install', lambda t: os.path.basename(t[0]) in ('pip', 'pip3') and 'install' in t,
     'installs from the package index (network)'),
    ('test suite', lambda t: t[1:3] == ['-m', 'pytest'],
     'the test suite itself, which runs this test'),
    ('GPU', _gpu, 'needs a CUDA GPU (tests/test_gpu.py checks that path where there is one)'),
    ('several machines', lambda t: '-f' in t and 'mpiexec' in t[0],
     'MPI over several machines (a hostfile)'),
    ('PyTorch', lambda t: '--torch' in t,
     'needs PyTorch in an environment of its own (bench/README.md)'),
    ('server', lambda t: os.path.basename(t[0]) == 'tensorboard',
     'starts a server that runs until stopped (tests/test_tensorboard.py starts one and reads '
     'its API)'),
    ('benchmark', lambda t: any(token.startswith('bench/') for token in t),
     'a speed measurement, minutes by design (bench/README.md)'),
)
#: Commands (as in the README, a prefix) that must have run, not been skipped.
MUST_RUN = (
    '.venv/bin/python bc7db4a2/train.py --gpu -1 --epoch 3',
    '.venv/bin/python -m common.env',
    '.venv/bin/python -m common.evaluate results/bc7db4a2-cpu-demo',
    '.venv/bin/python -m common.reconstruct results/bc7db4a2-cpu-demo',
    '.venv/bin/python -m common.latent encode results/bc7db4a2-cpu-demo',
    '.venv/bin/python -m common.latent decode results/bc7db4a2-cpu-demo',
    '.venv/bin/python c9335bce/train.py --gpu -1',
    '.venv/bin/python -m common.compare results/bc7db4a2-cpu-demo',
    '.venv/bin/mpiexec -n 2',
    'cp -r bc7db4a2 ' + NEW_ID,
    '.venv/bin/python -m common.compare /tmp/long/bc7db4a2',
)


def command_blocks(text):
    """The lines of the README's command blocks: fenced ``` blocks without a language, or
    with sh/bash/shell/console."""
    lines, inside = [], False
    for line in text.splitlines():
        fence = re.match(r'\s*```\s*(\w*)', line)
        if fence and not inside:
            inside = fence.group(1) in ('', 'sh', 'bash', 'shell', 'console')
            inside = inside or None  # a fenced block of another language: not commands
        elif fence:
            inside = False
        elif inside and line.strip():
            lines.append(line)
    return lines


def commands(path):
    """The commands of a README, one per element: lines split at '&&' and ';', with <new-id>
    filled in."""
    with open(os.path.join(REPOSITORY, path), encoding='utf-8') as f:
        for line in command_blocks(f.read()):
            lexer = shlex.shlex(line.replace('<new-id>', NEW_ID), posix=True,
                                punctuation_chars=True)
            lexer.whitespace_split, lexer.commenters = True, '#'
            command = []
            for token in list(lexer) + [';']:
                if token in ('&&', ';'):
                    if command:
                        yield command
                    command = []
                else:
                    command.append(token)


def _environment(tokens):
    """({NAME: value} of the leading assignments, the command after them)."""
    assignments = {}
    while tokens and re.fullmatch(r'[A-Za-z_][A-Za-z0-9_]*=.*', tokens[0]):
        name, value = tokens[0].split('=', 1)
        assignments[name] = value
        tokens = tokens[1:]
    return assignments, tokens


def _out(tokens):
    """The results folder a train.py command writes."""
    script = next(token for token in tokens if token.endswith('/train.py'))
    if '--out' in tokens:
        return tokens[tokens.index('--out') + 1]
    return 'results/' + script.split('/')[0]


def _with_flags(tokens, flags):
    tokens = [token for token in tokens if token != '[flags]']
    for flag, value in flags.items():
        if flag in tokens:
            tokens[tokens.index(flag) + 1] = value
        else:
            tokens += [flag, value]
    return tokens


def plan(temporary):
    """[(readme, command as written, argv to run or None, why skipped)], in README order."""
    steps, written, unavailable, seen = [], set(), {}, {}
    for readme in READMES:
        for tokens in commands(readme):
            written_as = ' '.join(shlex.quote(token) for token in tokens)
            assignments, tokens = _environment(tokens)
            reason = next((why for _, rule, why in SKIP_RULES if rule(tokens)), None)
            reads = [token for token in tokens if token in unavailable]
            if reason is None and reads:
                reason = 'reads {}, which only a skipped command writes ({})'.format(
                    reads[0], unavailable[reads[0]])
            if reason is None and written_as in seen:
                reason = 'the same command ran from {}'.format(seen[written_as])
            trains = any(token.endswith('/train.py') for token in tokens)
            if trains and reason is not None and _out(tokens) not in written:
                unavailable[_out(tokens)] = written_as
            if reason is not None:
                steps.append((readme, written_as, None, reason))
                continue
            seen[written_as] = readme
            if trains:
                written.add(_out(tokens))
                unavailable.pop(_out(tokens), None)
                tokens = _with_flags(tokens, TINY_TRAINING)
            for tool, flags in TOOL_FLAGS.items():
                if tool in ' '.join(tokens):
                    tokens = tokens + flags
            argv = []
            for token in tokens:
                if token in ('python', 'python3'):
                    pytest.fail('{}: "{}" runs a bare {}, which after the quick start is not '
                                'the environment: write .venv/bin/python'.format(
                                    readme, written_as, token))
                if token.startswith('.venv/bin/'):
                    token = os.path.join(BIN, token[len('.venv/bin/'):])
                elif token.startswith('/tmp/'):
                    token = os.path.join(temporary, token[len('/tmp/'):])
                argv.append(token)
            steps.append((readme, written_as, (assignments, argv), None))
    return steps


def _run_chain(steps, cwd, environment, failures, durations):
    for readme, written_as, (assignments, argv), _ in steps:
        start = time.monotonic()
        result = subprocess.run(argv, cwd=cwd, env=dict(environment, **assignments),
                                capture_output=True, text=True, timeout=600)
        durations.append((time.monotonic() - start, readme, written_as))
        if result.returncode != 0:
            failures.append('{}: "{}" ended with exit status {}:\n{}'.format(
                readme, written_as, result.returncode, (result.stdout + result.stderr)[-3000:]))
            return


def test_every_command_block_runs_as_written_after_the_quick_start(tmp_path):
    repository = copy_repository(tmp_path / 'repository')
    temporary = tmp_path / 'tmp'
    temporary.mkdir()
    if not os.path.exists(os.path.join(BIN, 'mpiexec')):
        pytest.skip('no mpiexec in this environment (the test extra installs MPICH)')
    steps = plan(str(temporary))

    skipped = [(readme, written_as, reason) for readme, written_as, argv, reason in steps
               if argv is None]
    print('\nskipped README commands:')
    for readme, written_as, reason in skipped:
        print('  {}: {}\n      {}'.format(readme, written_as, reason))
    ran = [written_as for _, written_as, argv, _ in steps if argv is not None]
    for prefix in MUST_RUN:
        assert any(command.startswith(prefix) for command in ran), \
            '{!r} did not run: {}'.format(prefix, skipped)

    # README.md's chain in the repository copy; the experiments' under /tmp: nothing shared.
    chains = [[step for step in steps if step[2] is not None and step[0] == 'README.md'],
              [step for step in steps if step[2] is not None and step[0] != 'README.md']]
    assert not any(str(temporary) in ' '.join(step[2][1]) for step in chains[0])
    assert not any(token.startswith('results/') for step in chains[1] for token in step[2][1])
    environment = dict(os.environ, OMP_NUM_THREADS='1')
    failures, durations = [], []
    threads = [threading.Thread(target=_run_chain, args=(chain, repository, environment,
                                                          failures, durations))
               for chain in chains]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print('README commands run (seconds, two chains at once):')
    for seconds, readme, written_as in durations:
        print('  {:5.1f}  {}: {}'.format(seconds, readme, written_as[:100]))
    assert not failures, '\n\n'.join(failures)
    assert (repository / 'results' / 'bc7db4a2-cpu-demo' / 'evaluation.json').is_file()
    assert (repository / 'results' / 'compare' / 'comparison.md').is_file()
    assert (repository / 'results' / 'out.wav').is_file()
    assert (temporary / 'long' / 'compare' / 'comparison.md').is_file()
