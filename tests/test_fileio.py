"""Tests of svc_plugin.fileio: temporary names, renaming files and folders into place, cleanup."""

import hashlib
import os

import pytest
import torch

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
# replace_together / replace_atomically: all files or none, never a part, nothing left behind.

def text_writer(text, seen=None):
    """A writer of `text`; with `seen`, it records the temporary name it was given."""
    def write(tmp_path):
        if seen is not None:
            seen.append(tmp_path)
        with open(tmp_path, 'w') as f:
            f.write(text)
    return write

def test_replace_together_renames_only_after_every_file_is_written_and_synced(tmp_path, monkeypatch):
    a, b = tmp_path / 'a.json', tmp_path / 'b.pt'
    a.write_text('old a')
    synced, a_during_write_of_b = set(), []
    monkeypatch.setattr(fileio.os, 'fsync', lambda fd: synced.add(os.fstat(fd).st_ino)) # A rename keeps the inode.
    def write_b(tmp_path):
        a_during_write_of_b.append(a.read_text())
        text_writer('new b')(tmp_path)
    seen = []
    fileio.replace_together([(str(a), text_writer('new a', seen)), (str(b), write_b)])
    assert (a.read_text(), b.read_text()) == ('new a', 'new b')
    assert seen == [fileio.temporary_path(str(a))]
    assert a_during_write_of_b == ['old a'] # The first file was not in place before the second was written.
    assert synced == {os.stat(a).st_ino, os.stat(b).st_ino}
    assert sorted(os.listdir(tmp_path)) == ['a.json', 'b.pt']

@pytest.mark.parametrize('error', [OSError(28, 'No space left on device'), KeyboardInterrupt()])
def test_replace_together_that_fails_leaves_every_final_name_as_it_was_and_no_temporary(tmp_path, error):
    a, b = tmp_path / 'a.json', tmp_path / 'b.pt'
    a.write_text('old a')
    b.write_text('old b')
    def failing(tmp_path):
        text_writer('half of new b')(tmp_path)
        raise error
    with pytest.raises(type(error)) as info:
        fileio.replace_together([(str(a), text_writer('new a')), (str(b), failing)], hint='; free some space')
    assert (a.read_text(), b.read_text()) == ('old a', 'old b')
    assert sorted(os.listdir(tmp_path)) == ['a.json', 'b.pt']
    if isinstance(error, OSError):
        assert str(info.value) == f'cannot write {b}: No space left on device; free some space'

def test_replace_atomically_writes_under_a_temporary_name_with_the_suffix(tmp_path):
    path, seen = tmp_path / 'frame.png', []
    path.write_text('old')
    fileio.replace_atomically(str(path), text_writer('new', seen), suffix='.png')
    assert path.read_text() == 'new' and os.listdir(tmp_path) == ['frame.png']
    assert seen == [fileio.temporary_path(str(path), '.png')] and seen[0].endswith('.png')
    assert fileio.final_path_of(seen[0]) == str(path) and fileio.temporaries_of(str(path)) == []

def test_temporary_names_map_back_to_their_final_name(tmp_path):
    path = str(tmp_path / 'network-snapshot-000004.pkl')
    assert fileio.temporary_path(path) == f'{path}.tmp{os.getpid()}'
    assert fileio.final_path_of(f'{path}.tmp123') == path and fileio.final_path_of(f'{path}.tmp123.png') == path
    assert fileio.final_path_of(path) == path and fileio.final_path_of(f'{path}.tmpx') == f'{path}.tmpx'
    for name in [f'{path}.tmp7', f'{path}.tmp8.mp4', path, f'{path}.tmp.bak', str(tmp_path / 'other.pkl.tmp9')]:
        open(name, 'w').close()
    assert sorted(fileio.temporaries_of(path)) == [f'{path}.tmp7', f'{path}.tmp8.mp4']

def test_bytes_and_torch_writers_write_what_they_are_given(tmp_path):
    fileio.write_bytes_atomically(str(tmp_path / 'a.bin'), b'\x00\x01')
    fileio.replace_atomically(str(tmp_path / 'b.pt'), fileio.torch_writer(dict(x=torch.arange(3))))
    assert (tmp_path / 'a.bin').read_bytes() == b'\x00\x01'
    assert torch.equal(torch.load(tmp_path / 'b.pt', weights_only=True)['x'], torch.arange(3))
    fileio.append_jsonl(str(tmp_path / 'c.jsonl'), dict(a=1))
    fileio.append_jsonl(str(tmp_path / 'c.jsonl'), dict(b=[2]))
    assert (tmp_path / 'c.jsonl').read_text() == '{"a": 1}\n{"b": [2]}\n'

def test_a_failed_write_names_the_file_and_the_hint_only_when_given(tmp_path):
    missing = tmp_path / 'missing-folder' / 'a.bin'
    for kwargs, hint in [({}, ''), (dict(hint='; check --outdir'), '; check --outdir')]:
        with pytest.raises(OSError) as info:
            fileio.write_bytes_atomically(str(missing), b'x', **kwargs)
        assert str(info.value) == f'cannot write {missing}: No such file or directory{hint}'
    seen = []
    for replace in [lambda: fileio.replace_atomically(str(missing), text_writer('x', seen)),
                    lambda: fileio.replace_together([(str(missing), text_writer('x', seen))])]:
        with pytest.raises(OSError) as info:
            replace()
        assert str(info.value) == f'cannot write {missing}: No such file or directory'
    assert seen == [fileio.temporary_path(str(missing))] * 2 # No suffix unless asked for.

@pytest.mark.parametrize('kind', ['file', 'folder'])
def test_rename_into_place_onto_a_new_name(tmp_path, kind):
    final, tmp = tmp_path / 'out', fileio.temporary_path(str(tmp_path / 'out'))
    if kind == 'folder':
        os.makedirs(tmp)
    else:
        open(tmp, 'w').close()
    fileio.rename_into_place(tmp, str(final))
    assert os.listdir(tmp_path) == ['out'] and final.is_dir() == (kind == 'folder')

def test_a_replaced_folder_is_moved_aside_under_a_temporary_name_of_its_own(tmp_path, monkeypatch):
    """Between the two renames the earlier folder lives under a temporary name of `path`, beside it: a crash there
    leaves a temporary that temporaries_of(path) finds, not a stray folder elsewhere."""
    final, tmp = tmp_path / 'video0', fileio.temporary_path(str(tmp_path / 'video0'))
    final.mkdir()
    os.makedirs(tmp)
    renames, replace = [], os.replace
    monkeypatch.setattr(fileio.os, 'replace', lambda src, dst: renames.append((src, dst)) or replace(src, dst))
    fileio.rename_into_place(tmp, str(final))
    (old, aside), (new, target) = renames
    assert (old, new, target) == (str(final), tmp, str(final))
    assert fileio.final_path_of(aside) == str(final) and aside != tmp and os.path.dirname(aside) == str(tmp_path)

def test_file_sha256_reads_the_whole_file(tmp_path):
    data = os.urandom(3 << 20) # Three of its 1 MiB blocks.
    (tmp_path / 'big.bin').write_bytes(data)
    assert fileio.file_sha256(str(tmp_path / 'big.bin')) == hashlib.sha256(data).hexdigest()

#----------------------------------------------------------------------------
