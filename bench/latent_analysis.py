"""Memory and time of the frame PCA of ``python -m common.latent analyze`` at a real latent size.

    python bench/latent_analysis.py [--units 4096] [--frames 8192] [--rank 300] [--threads 1]

The analysis of a run keeps, whatever the corpus's length, the frame statistics
(common.latent_measures.FrameStatistics): the frames themselves while they are no more than
the units (the Gram route), else a units x units float64 covariance (the covariance route, the
worst case), plus the samples of whole blocks and of time-pooled blocks (at most MAX_BLOCKS and
MAX_PROBE_BLOCKS).  This adds ``--frames`` synthetic latent frames of ``--units`` units (tanh of
a rank ``--rank`` signal plus noise) in chunks of 800 (one 51 s segment's time steps), then
decomposes, projects a 16-block latent on k components, and reports the time of each step and
the process's peak memory (ru_maxrss).  bc7db4a2's frames have 4096 units, c9335bce's 9216.
The whole command on a run prints its own time and peak memory on its last log line.
"""
import argparse
import os
import resource
import time


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--units', type=int, default=4096)
    parser.add_argument('--frames', type=int, default=8192)
    parser.add_argument('--rank', type=int, default=300)
    parser.add_argument('--threads', type=int, default=1)
    args = parser.parse_args()
    for name in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS'):
        os.environ[name] = str(args.threads)
    import numpy
    from common import latent_measures as measures

    rng = numpy.random.default_rng(0)
    mixing = rng.normal(size=(args.rank, args.units)).astype(numpy.float32) / numpy.sqrt(args.rank)
    statistics = measures.FrameStatistics(args.units)
    started = time.perf_counter()
    for start in range(0, args.frames, 800):
        count = min(800, args.frames - start)
        signal = rng.normal(size=(count, args.rank)).astype(numpy.float32) @ mixing
        statistics.add(numpy.tanh(signal + 0.05 * rng.normal(size=signal.shape)))
    accumulated = time.perf_counter() - started
    route = 'Gram' if statistics.covariance_sum is None else 'covariance'
    started = time.perf_counter()
    mean = statistics.mean
    values, components = statistics.decompose()
    decomposed = time.perf_counter() - started
    found = measures.spectrum_measures(values)
    truncate = measures.Truncation(mean, components, (args.units, 16, 1))
    latents = numpy.tanh(rng.normal(size=(16, args.units, 16, 1))).astype(numpy.float32)
    started = time.perf_counter()
    truncate(latents, args.units // 2)
    projected = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print('units %d, frames %d (%s route), %d thread(s): accumulate %.1f s, decompose %.1f s, '
          'project 16 blocks %.2f s; peak memory %.0f MB; components_99 %d, effective rank %.1f'
          % (args.units, args.frames, route, args.threads, accumulated, decomposed, projected,
             peak, found['components_99'], found['effective_rank']))


if __name__ == '__main__':
    main()
