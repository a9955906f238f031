"""Tests of svc_plugin.fileio: temporary names, renaming files and folders into place, cleanup."""

import os

import pytest

from svc_plugin import fileio

#----------------------------------------------------------------------------

def test_a_folder_replaces_an_earlier_folder_and_nothing_is_left_aside(tmp_path):
    final, tmp = tmp_path / 'video0', fileio.temporary_path(str(tmp_path / 'video0'))
    final.mkdir()
    (final / 'old.png').write_text('old')
    os.makedirs(tmp)
    (tmp_path / os.path.basename(tmp) / 'new.png').write_text('new')
    fileio.rename_into_place(tmp, str(final))
    assert os.listdir(final) == ['new.png'] and os.listdir(tmp_path) == ['video0']

def test_a_file_replaces_an_earlier_file(tmp_path):
    final = tmp_path / 'out.mp4'
    final.write_text('old')
    tmp = fileio.temporary_path(str(final))
    open(tmp, 'w').write('new')
    fileio.rename_into_place(tmp, str(final))
    assert final.read_text() == 'new' and os.listdir(tmp_path) == ['out.mp4']

def test_a_failed_rename_keeps_the_earlier_folder(tmp_path):
    final = tmp_path / 'video0'
    final.mkdir()
    (final / 'old.png').write_text('old')
    with pytest.raises(OSError):
        fileio.rename_into_place(str(tmp_path / 'never-written'), str(final))
    assert os.listdir(tmp_path) == ['video0'] and os.listdir(final) == ['old.png']

@pytest.mark.parametrize('kind', ['file', 'folder', 'missing'])
def test_discard_removes_a_temporary_file_or_folder_if_there(tmp_path, kind):
    tmp = fileio.temporary_path(str(tmp_path / 'out'))
    if kind == 'file':
        open(tmp, 'w').write('x')
    if kind == 'folder':
        os.makedirs(os.path.join(tmp, 'inner'))
    fileio.discard(tmp)
    assert os.listdir(tmp_path) == []

#----------------------------------------------------------------------------
