"""Files on disk: written so that a crash never leaves half of one (the one atomic-write
mechanism), and read so that a file handed to us cannot hang or exhaust memory.

Results folders and model files travel between researchers, so a path we read may name a FIFO
(opening it for reading would wait forever for a writer), a device such as ``/dev/zero``
(endless), or a regular file far larger than what it should be.  :func:`open_regular` and
:func:`read_regular` accept regular files only, up to a size the caller states, and say why
in one line (:class:`FileRefused`) otherwise.
"""
import contextlib
import os
import stat
import tempfile


class FileRefused(ValueError):
    """A file we were asked to read is not a regular file of acceptable size: one-line message."""


@contextlib.contextmanager
def atomic_write(path, mode='wb', encoding=None):
    """Open a temporary file beside ``path``; rename it over ``path`` when the block succeeds.

    ``path`` then holds either its old content or the complete new one.  If the block raises,
    the temporary file is removed and the exception propagates.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    descriptor, temporary = tempfile.mkstemp(
        dir=folder, prefix='.{}.'.format(os.path.basename(path)), suffix='.tmp')
    try:
        with os.fdopen(descriptor, mode, encoding=encoding) as stream:
            yield stream
        os.chmod(temporary, 0o644)  # mkstemp makes 0600; give the usual mode of a new file
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _size_text(size):
    for unit, scale in (('GiB', 2 ** 30), ('MiB', 2 ** 20), ('KiB', 2 ** 10)):
        if size >= scale:
            return '{:.1f} {}'.format(size / scale, unit)
    return '{} bytes'.format(size)


def open_regular(path, max_bytes=None):
    """A binary file object of ``path`` after checking, on the opened file itself (no race), that
    it is a regular file of at most ``max_bytes`` bytes (None: any size).

    Opened with O_NONBLOCK, so a FIFO is refused instead of waiting for a writer.  Raises
    FileNotFoundError/OSError when it cannot be opened, :class:`FileRefused` otherwise.
    """
    path = os.fspath(path)
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, 'O_CLOEXEC', 0))
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            raise FileRefused('{}: not a regular file'.format(path))
        if max_bytes is not None and info.st_size > max_bytes:
            raise FileRefused('{}: {} bytes, more than the {} such a file may have'.format(
                path, info.st_size, _size_text(max_bytes)))
        os.set_blocking(descriptor, True)
        return os.fdopen(descriptor, 'rb')
    except BaseException:
        os.close(descriptor)
        raise


def read_regular(path, max_bytes):
    """The bytes of a regular file of at most ``max_bytes`` bytes (see :func:`open_regular`).

    Reads at most ``max_bytes + 1`` bytes, so a file that grows after the check is refused too.
    """
    with open_regular(path, max_bytes) as stream:
        content = stream.read(max_bytes + 1)
    if len(content) > max_bytes:
        raise FileRefused('{}: more than the {} such a file may have'.format(
            path, _size_text(max_bytes)))
    return content
