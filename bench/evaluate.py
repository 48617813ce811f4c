"""Where common.evaluate's time goes: CPU seconds per second of audio of each measure.

    python bench/evaluate.py [--files 5] [--f0-method harvest] [--dnsmos]

On the first --files recordings of the demo corpus (each one utterance, as evaluate measures
them), with an untrained c9335bce network (the measures' cost does not depend on the weights):
the whole of ``evaluate_utterance``, then each step alone on the same waves -- the renderings
(network, two Griffin-Lims of 100 iterations, the true-phase waves), the MCD's WORLD analysis,
the F0 of the reference and the three renderings, STOI + ESTOI, narrowband PESQ and, with
--dnsmos, DNSMOS on four waves.  CPU time of this process (time.process_time), one BLAS
thread, so other jobs on the machine change it less than wall time.
"""
import argparse
import glob
import os
import sys

for _variable in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS'):
    os.environ[_variable] = '1'

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPOSITORY)

import time  # noqa: E402

import numpy  # noqa: E402

from common import audio, evaluate, metrics  # noqa: E402
from common import reconstruct as tools  # noqa: E402
from common import spectrogram as sp  # noqa: E402


def cpu(function, *args, **kwargs):
    start = time.process_time()
    result = function(*args, **kwargs)
    return time.process_time() - start, result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--files', type=int, default=5)
    parser.add_argument('--f0-method', choices=metrics.F0_METHODS, default=evaluate.F0_METHOD)
    parser.add_argument('--dnsmos', action='store_true')
    args = parser.parse_args(argv)
    sys.path.insert(0, os.path.join(REPOSITORY, 'tests'))
    from conftest import load_experiment_module
    net = load_experiment_module('c9335bce').Net()
    paths = sorted(glob.glob(os.path.join(REPOSITORY, 'data', 'demo', '*', '*.flac')))
    waves = [audio.load(path) for path in paths[:args.files]]
    seconds = sum(len(wave) for wave in waves) / sp.SAMPLE_RATE
    pesq = metrics.pesq_unavailable() is None
    costs = {}

    def add(name, value):
        costs[name] = costs.get(name, 0.0) + value

    for wave in waves:
        add('evaluate_utterance, all of it', cpu(
            evaluate.evaluate_utterance, net, wave, f0_method=args.f0_method, pesq=pesq,
            dnsmos=args.dnsmos)[0])
        scaled = sp.normalize_batch(numpy.asarray(wave, dtype=numpy.float32)[None])[0][0]
        piece = scaled[:sp.wave_length(sp.n_frames(len(scaled)))]
        start = time.process_time()
        spectrogram = tools.recording_spectrogram(piece)
        phase = sp.stft(piece)
        output = evaluate.inference.autoencode(net, spectrogram)
        clean = sp.to_wave(spectrogram, phase=phase)
        renderings = [sp.to_wave(spectrogram, n_iter=tools.GRIFFIN_LIM_ITERATIONS),
                      sp.to_wave(output, n_iter=tools.GRIFFIN_LIM_ITERATIONS),
                      sp.to_wave(output, phase=phase)]
        add('renderings (network, 2 x Griffin-Lim 100, true phase)', time.process_time() - start)
        start = time.process_time()
        reference = metrics.MelCepstrumReference(
            clean, f0_method=args.f0_method, analysis_rate=evaluate.MCD_SAMPLE_RATE,
            analysis_wave=piece)
        for rendering in renderings:
            reference.frame_distortions(rendering)
        add('MCD (F0 of the recording, cheaptrick of 4 waves)', time.process_time() - start)
        add('F0 of 4 waves (%s, 8 kHz)' % args.f0_method, sum(
            cpu(evaluate._f0, rendering, args.f0_method)[0] for rendering in [clean] + renderings))
        add('STOI + ESTOI of 3 waves', sum(
            cpu(metrics.stoi, clean, rendering, extended=extended)[0]
            for rendering in renderings for extended in (False, True)))
        if pesq:
            add('PESQ narrowband of 3 waves', sum(
                cpu(metrics.pesq_narrowband, clean, rendering)[0] for rendering in renderings))
        if args.dnsmos:
            add('DNSMOS of 4 waves', sum(cpu(metrics.dnsmos_overall, rendering)[0]
                                         for rendering in [clean] + renderings))
    print('%d utterances, %.1f s of audio; CPU seconds per second of audio (one thread):'
          % (len(waves), seconds))
    for name, value in costs.items():
        print('  %-56s %6.3f' % (name, value / seconds))


if __name__ == '__main__':
    main()
