"""Memory of the GPU path: the peak in use, the size of CuPy's pool, and a cap on the pool.

CuPy keeps freed blocks in its memory pool for reuse, so the pool's size
(``cupy.get_default_memory_pool().total_bytes()``) only grows: it is what was once in use at the
same time, plus blocks that no request of the right size came back for.  The peak *in use* is what
a card must hold at least (the record's 3017 MiB card, less about 400 MiB of CUDA context); the
pool's size is what this process took from the card.  Both are reported, separately:

* :class:`PeakInUse` follows the bytes in use with a ``cupy.cuda.MemoryHook`` (every allocation
  and release of the pool, on the thread that installed it: Chainer's training loop);
* :class:`Meter` measures one block of code: on a GPU with :class:`PeakInUse` and the pool's
  size; on the CPU (NumPy arrays, e.g. the GPU code path under :mod:`common.gpu_path`'s switch)
  with ``tracemalloc``, which sees every NumPy array, as the pool sees every CuPy array;
* :func:`limit_pool` caps the pool (``--gpu-memory-limit MIB``), so a run proves that it fits a
  card: past the cap CuPy raises ``OutOfMemoryError`` instead of growing the pool.
"""
import tracemalloc

MIB = 2 ** 20


def _cupy():
    import cupy
    return cupy


def pool():
    """CuPy's default memory pool (the one Chainer allocates from)."""
    return _cupy().get_default_memory_pool()


def out_of_memory_errors():
    """The exception classes of a GPU out of memory (an empty tuple without CuPy), for
    ``except``."""
    try:
        import cupy
        return (cupy.cuda.memory.OutOfMemoryError,)
    except Exception:  # noqa: BLE001  (no CuPy, or one that cannot load: nothing to catch)
        return ()


def limit_pool(mib):
    """Cap CuPy's default pool at ``mib`` MiB (None: no cap); returns the cap in bytes."""
    limit = 0 if mib is None else int(mib * MIB)
    pool().set_limit(size=limit)
    return pool().get_limit()


def PeakInUse(device_id=None):
    """A ``cupy.cuda.MemoryHook`` with ``.peak`` and ``.in_use`` (bytes of the pool's blocks in
    use, rounded as the pool rounds them), starting from what is in use when it is made.

    Use it as a context manager (``with PeakInUse() as hook:``) or call ``__enter__`` and
    ``__exit__`` around a Trainer's run; it sees the allocations of the thread that entered it.
    """
    cupy = _cupy()
    default_pool = cupy.get_default_memory_pool()
    device_id = cupy.cuda.Device().id if device_id is None else device_id

    class Hook(cupy.cuda.MemoryHook):
        name = 'PeakInUse'

        def __init__(self):
            self.in_use = self.peak = default_pool.used_bytes()

        def resynchronize(self):
            """Take the pool's own count (it also sees releases made on other threads)."""
            self.in_use = default_pool.used_bytes()
            self.peak = max(self.peak, self.in_use)

        def malloc_postprocess(self, **kwargs):
            if kwargs.get('mem_ptr') and kwargs.get('device_id') == device_id:
                self.in_use += kwargs['mem_size']
                if self.in_use > self.peak:
                    self.peak = self.in_use

        def free_postprocess(self, **kwargs):
            if kwargs.get('device_id') == device_id:
                self.in_use -= kwargs['mem_size']

    return Hook()


class Meter:
    """Peak bytes in use inside ``with Meter(xp):`` (``.peak_bytes``), and on a GPU the size of
    CuPy's pool at the end (``.pool_bytes``; None on the CPU).  :meth:`reset_peak` starts a new
    peak (for the second of two iterations)."""

    def __init__(self, xp):
        import numpy
        self.on_gpu = xp is not numpy
        self.peak_bytes = 0
        self.pool_bytes = None
        self._hook = None

    def __enter__(self):
        if self.on_gpu:
            self._hook = PeakInUse()
            self._hook.__enter__()
        else:
            tracemalloc.start()
        return self

    def current(self):
        """(bytes in use now, peak so far)."""
        if self.on_gpu:
            return self._hook.in_use, self._hook.peak
        return tracemalloc.get_traced_memory()

    def reset_peak(self):
        if self.on_gpu:
            self._hook.resynchronize()
            self._hook.peak = self._hook.in_use
        else:
            tracemalloc.reset_peak()

    def __exit__(self, *exc_info):
        self.peak_bytes = self.current()[1]
        if self.on_gpu:
            self._hook.__exit__(*exc_info)
            self.pool_bytes = pool().total_bytes()
        else:
            tracemalloc.stop()
        return False
