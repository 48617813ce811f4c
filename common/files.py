"""Writing files so that a crash never leaves half of one: the one atomic-write mechanism."""
import contextlib
import os
import tempfile


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
