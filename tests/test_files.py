"""common.files: atomic writes (old content or the complete new one) and bounded reads."""
import os

import pytest

from common import files


def test_success_replaces_the_file(tmp_path):
    path = tmp_path / 'summary.json'
    path.write_text('old')
    with files.atomic_write(path, 'w') as f:
        f.write('new')
    assert path.read_text() == 'new'
    assert [p.name for p in tmp_path.iterdir()] == ['summary.json']


def test_an_error_keeps_the_old_content_and_leaves_no_temporary(tmp_path):
    path = tmp_path / 'model.bin'
    path.write_bytes(b'old')
    with pytest.raises(RuntimeError):
        with files.atomic_write(path) as f:
            f.write(b'half of the new')
            raise RuntimeError('interrupted')
    assert path.read_bytes() == b'old'
    assert [p.name for p in tmp_path.iterdir()] == ['model.bin']


@pytest.mark.parametrize('case', ['fifo', 'folder', 'too large'])
def test_reading_refuses_what_is_not_a_small_regular_file(case, tmp_path):
    """A FIFO would block a plain open() until a writer came; /dev/zero would never end."""
    path = tmp_path / 'log'
    if case == 'fifo':
        os.mkfifo(str(path))
    elif case == 'folder':
        path.mkdir()
    else:
        path.write_bytes(b'x' * 101)
    with pytest.raises(files.FileRefused) as error:
        files.read_regular(path, 100)
    message = str(error.value)
    assert message.startswith(str(path) + ': ') and '\n' not in message
    assert ('not a regular file' if case != 'too large' else
            '101 bytes, more than the 100 bytes') in message


def test_reading_a_regular_file(tmp_path):
    path = tmp_path / 'summary.json'
    path.write_bytes(b'{}')
    assert files.read_regular(path, 2) == b'{}'
    with pytest.raises(files.FileRefused):
        files.read_regular('/dev/zero', 100)
