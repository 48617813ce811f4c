"""common.files.atomic_write: a file is either its old content or the complete new one."""
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
