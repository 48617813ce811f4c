""".npz archives read as data: never unpickled, and checked before anything is allocated.

Chainer's ``chainer.serializers.load_npz`` opens archives with ``allow_pickle=True``, so a
``model.npz`` or a trainer snapshot with one entry replaced by a pickled object runs whatever
that object names while it loads (PyTorch made ``torch.load`` weights-only for the same
reason).  Model files and snapshots travel between researchers, so every tool here reads them
through this module instead:

- :class:`Archive` opens an .npz (a zip of .npy files) that must be a regular file, and reads an
  entry's .npy header (``numpy.lib.format.read_magic`` and ``read_array_header_*``) before its
  data: an object array (which only pickle can read) is refused, and so is an entry whose
  declared shape and dtype do not account for exactly the bytes the zip member holds, so a
  forged header never makes us allocate more than the member's declared size, which the caller
  bounds (:meth:`Archive.header` tells it before any data is read).
- :func:`load_npz` is ``chainer.serializers.load_npz`` on such an archive: Chainer's own
  :class:`~chainer.serializers.NpzDeserializer` assigns the values, after each entry has been
  checked against the value it replaces (same shape for arrays, floating point for floating
  point, a 0-d number, boolean or string for a scalar), so an entry that does not fit is named
  instead of being broadcast or cast into place.  It loads models (:func:`common.runs.load_model`)
  and trainer snapshots (``--resume``) alike.

Every refusal is an :class:`NpzError`, one line naming the file and the reason.
"""
import lzma
import zipfile
import zlib

import numpy
from numpy.lib import format as npy_format

import common  # noqa: F401  (Chainer compatibility before chainer is imported)
import chainer

from common import files

#: Entries whose target is None (a parameter not yet initialised) or a string take their size
#: from the file; no single such entry may declare more than this.
MAX_UNSIZED_BYTES = 2 ** 30
#: The .npy header versions numpy writes for numeric arrays (3.0 only adds UTF-8 field names).
HEADER_READERS = {(1, 0): npy_format.read_array_header_1_0,
                  (2, 0): npy_format.read_array_header_2_0}
#: The zip compression methods a member may use: numpy writes the first two; Python's zipfile
#: reads all four.  Any other method, and zip encryption, is refused by name.
COMPRESSIONS = {zipfile.ZIP_STORED: 'stored', zipfile.ZIP_DEFLATED: 'deflated',
                zipfile.ZIP_BZIP2: 'bzip2', zipfile.ZIP_LZMA: 'lzma'}
#: What reading a member's data may raise when it is corrupt or truncated: the zip module's own
#: errors, and those of each decompressor (zlib, bzip2's OSError, lzma).
MEMBER_ERRORS = (ValueError, EOFError, OSError, zipfile.BadZipFile, zlib.error, lzma.LZMAError,
                 NotImplementedError, RuntimeError)
#: dtype kinds an entry may have for each kind of target (numpy's casting 'same_kind' in spirit,
#: but never a float target from integers: a model of integers is not a model).
FITTING_KINDS = {'f': 'f', 'i': 'iu', 'u': 'iu', 'b': 'b', 'c': 'c'}


class NpzError(ValueError):
    """An .npz archive that cannot be read safely, or does not fit its target: one line."""


class MissingEntry(NpzError, KeyError):
    """An entry the target asks for and the archive lacks.  A KeyError too, as Chainer's own
    deserializer raises there, so the places Chainer tolerates a missing entry keep doing so:
    an extension added since the snapshot was written (its trigger's state is new) resumes with
    Chainer's warning instead of being refused.  Everything else that is missing (a parameter,
    the optimizer's state) still ends the load with this one-line error."""

    def __str__(self):  # KeyError's own would quote the message
        return str(self.args[0]) if self.args else ''


class Header:
    """What an entry's .npy header declares: ``shape``, ``dtype``, ``nbytes``."""

    def __init__(self, key, shape, dtype):
        self.key = key
        self.shape = tuple(shape)
        self.dtype = dtype
        self.nbytes = int(numpy.prod(self.shape, dtype=object)) * dtype.itemsize

    def describe(self):
        return '{} {}'.format(self.dtype, self.shape)


def _one_line(error):
    return ' '.join(str(error).split()) or type(error).__name__


class Archive:
    """An .npz archive opened for reading as data (see the module docstring).

    ``what`` names the archive in messages ('model', 'snapshot', 'latent file').  ``max_bytes``
    bounds the file's size on disk (None: any).  Use as a context manager, or :meth:`close`.
    """

    def __init__(self, path, what='archive', max_bytes=None):
        self.path = str(path)
        self.what = what
        try:
            self._stream = files.open_regular(self.path, max_bytes)
        except files.FileRefused as error:
            raise NpzError(str(error))
        except OSError as error:
            raise NpzError('{}: cannot open ({})'.format(self.path, error.strerror or error))
        try:
            size = self._stream.seek(0, 2)
            self._stream.seek(0)
            if size == 0:
                raise NpzError('{}: not a {} (empty file)'.format(self.path, what))
            self._zip = zipfile.ZipFile(self._stream)
        except NpzError:
            self._stream.close()
            raise
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as error:
            self._stream.close()
            raise NpzError('{}: not a {} (not an .npz archive, or truncated: {})'.format(
                self.path, what, _one_line(error)))
        self._members = {info.filename[:-len('.npy')]: info for info in self._zip.infolist()
                         if info.filename.endswith('.npy')}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self._zip.close()
        self._stream.close()

    @property
    def files(self):
        """The entries' names (numpy.load's ``files``)."""
        return list(self._members)

    def __contains__(self, key):
        return key in self._members

    def refuse(self, key, reason):
        return NpzError("{}: {} entry '{}' {}".format(self.path, self.what, key, reason))

    def _info(self, key):
        """The zip member of entry ``key``, refused unless zipfile can read it unaided."""
        try:
            info = self._members[key]
        except KeyError:
            raise NpzError("{}: {} has no entry '{}'".format(self.path, self.what, key))
        if info.flag_bits & 0x1:
            raise self.refuse(key, 'is encrypted (zip encryption): refused; numpy never '
                              'encrypts an entry')
        if info.compress_type not in COMPRESSIONS:
            raise self.refuse(key, 'uses zip compression method {}, which cannot be read '
                              '(numpy writes {})'.format(info.compress_type, ' or '.join(
                                  COMPRESSIONS[method] for method in (zipfile.ZIP_STORED,
                                                                      zipfile.ZIP_DEFLATED))))
        return info

    def header(self, key):
        """The :class:`Header` of entry ``key``, read without its data and checked: not an
        object array, and its shape and dtype account for exactly the member's bytes."""
        info = self._info(key)
        try:
            with self._zip.open(info) as stream:
                version = npy_format.read_magic(stream)
                if version not in HEADER_READERS:
                    raise self.refuse(key, 'has .npy format {}.{}, not 1.0 or 2.0'.format(*version))
                shape, _, dtype = HEADER_READERS[version](stream)
                header_size = stream.tell()
        except NpzError:
            raise
        except MEMBER_ERRORS as error:
            raise self.refuse(key, 'is not a readable .npy array ({})'.format(_one_line(error)))
        header = Header(key, shape, dtype)
        if dtype.hasobject:
            raise self.refuse(key, 'is an object array, which only pickle can read: refused '
                              '(files from elsewhere are never unpickled)')
        if header.nbytes != info.file_size - header_size:
            raise self.refuse(key, 'declares {} ({} bytes) but holds {} bytes (truncated or '
                              'forged)'.format(header.describe(), header.nbytes,
                                               info.file_size - header_size))
        return header

    def read(self, key, max_bytes=None):
        """Entry ``key`` as a numpy array, after :meth:`header`'s checks and, when given, a
        declared size of at most ``max_bytes``; never with pickle."""
        header = self.header(key)
        if max_bytes is not None and header.nbytes > max_bytes:
            raise self.refuse(key, 'declares {} ({} bytes), more than the {} allowed'.format(
                header.describe(), header.nbytes, max_bytes))
        try:
            with self._zip.open(self._members[key]) as stream:
                return npy_format.read_array(stream, allow_pickle=False)
        except MEMBER_ERRORS as error:
            raise self.refuse(key, 'is unreadable ({})'.format(_one_line(error)))

    def __getitem__(self, key):  # what Chainer's NpzDeserializer reads
        return self.read(key)


def check_fits(archive, header, value, what):
    """NpzError unless entry ``header`` can replace ``value`` (the deserializer's target)."""
    kind = header.dtype.kind
    if value is None or isinstance(value, str):
        wanted, shape = ('U', ()) if isinstance(value, str) else ('biufcU', header.shape)
        if header.nbytes > MAX_UNSIZED_BYTES:
            raise archive.refuse(header.key, 'declares {} ({} bytes), more than the {} '
                                 'allowed'.format(header.describe(), header.nbytes,
                                                  MAX_UNSIZED_BYTES))
    elif isinstance(value, (bool, numpy.bool_)):
        wanted, shape = 'b', ()
    elif isinstance(value, (int, numpy.integer)):
        wanted, shape = 'iu', ()
    elif isinstance(value, (float, numpy.floating)):
        wanted, shape = 'fiu', ()
    elif hasattr(value, 'shape') and hasattr(value, 'dtype'):  # numpy, CuPy, ChainerX arrays
        wanted = FITTING_KINDS.get(numpy.dtype(value.dtype).kind, '')
        shape = tuple(value.shape)
    else:
        raise misfit(archive, what, header.key, 'cannot be loaded into a {}'.format(
            type(value).__name__))
    if header.shape != shape:
        raise misfit(archive, what, header.key, 'has shape {}, not {}'.format(
            header.shape, shape))
    if kind not in wanted:
        raise misfit(archive, what, header.key, 'is {}, not {}'.format(
            header.dtype, {'f': 'floating point', 'iu': 'integers', 'b': 'booleans',
                           'fiu': 'a number', 'U': 'a string', 'biufcU': 'numbers'}.get(
                               wanted, 'of kind ' + wanted)))


def misfit(archive, what, key, reason):
    """The NpzError of an entry that is sound but does not fit the object it is loaded into."""
    return NpzError("{}: does not fit {}: entry '{}' {}".format(archive.path, what, key, reason))


class SafeDeserializer(chainer.serializers.NpzDeserializer):
    """Chainer's NpzDeserializer on an :class:`Archive`, each entry checked before it is read."""

    def __init__(self, archive, path='', strict=True, what='the target'):
        super().__init__(archive, path=path, strict=strict)
        self.what = what

    def __getitem__(self, key):
        key = key.strip('/')
        return SafeDeserializer(self.npz, self.path + key + '/', self.strict, self.what)

    def __call__(self, key, value):
        full = self.path + key.lstrip('/')
        if full in self.npz:
            check_fits(self.npz, self.npz.header(full), value, self.what)
        elif self.strict:
            raise MissingEntry("{}: does not fit {}: no entry '{}'".format(
                self.npz.path, self.what, full))
        return super().__call__(key, value)


def load_npz(path, obj, what=None, strict=True):
    """``chainer.serializers.load_npz(path, obj)`` without pickle: :class:`NpzError` (one line
    naming the file and the reason) for a file that is not a regular, complete .npz archive,
    needs pickle, lacks an entry, or has an entry of another shape or kind than ``obj`` needs.

    ``what`` names ``obj`` in messages (default: its class name), e.g. ``bc7db4a2/net.py:Net``
    or 'the trainer'.  On error ``obj`` may be partly loaded: load into a fresh object.
    """
    what = what or type(obj).__name__
    with Archive(path, 'model' if isinstance(obj, chainer.Link) else 'snapshot') as archive:
        try:
            SafeDeserializer(archive, strict=strict, what=what).load(obj)
        except NpzError:
            raise
        except (KeyError, ValueError, TypeError, RecursionError) as error:
            # e.g. an extension's state: Chainer's LogReport and PlotReport keep theirs as JSON
            raise NpzError('{}: does not fit {} ({}: {})'.format(
                path, what, type(error).__name__, _one_line(error)))
