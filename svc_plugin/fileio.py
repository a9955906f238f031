"""Files that a kill, a crash or a full disk never leave half-written.

Everything goes to `<name>.tmp<pid>` first, is flushed to disk, and is renamed onto its final name
only when complete: a final name holds either its previous content or the new one, never a part.
The streaming writers (videos, datasets) build their output under the same temporary names.
"""

import glob
import hashlib
import io
import json
import os
import re
import shutil

import torch

import dnnlib

#----------------------------------------------------------------------------

def temporary_path(path, suffix=''):
    """Where `path` is written (a file, or a folder built entry by entry) before it is renamed onto its final name."""
    return f'{path}.tmp{os.getpid()}{suffix}'

def temporaries_of(path):
    """The temporary files of `path` that writers (of any process) left behind."""
    return [tmp_path for tmp_path in glob.glob(glob.escape(path) + '.tmp*') if final_path_of(tmp_path) == path]

def final_path_of(tmp_path):
    """The final name of a temporary name (a name that is not temporary stays as it is)."""
    match = re.fullmatch(r'(.*)\.tmp\d+(\.\w+)?', tmp_path)
    return match.group(1) if match else tmp_path

def discard(tmp_path):
    """Remove a temporary file or folder, if it is there."""
    if os.path.isdir(tmp_path) and not os.path.islink(tmp_path):
        shutil.rmtree(tmp_path, ignore_errors=True)
    elif os.path.lexists(tmp_path):
        os.remove(tmp_path)

def rename_into_place(tmp_path, path):
    """os.replace for files and folders. A folder already at `path` is moved aside and removed only once the new one is
    in place (a non-empty folder cannot be replaced in one rename); if that fails, it goes back."""
    if not (os.path.isdir(path) and not os.path.islink(path)):
        os.replace(tmp_path, path)
        return
    aside = temporary_path(path, '.old')
    os.replace(path, aside)
    try:
        os.replace(tmp_path, path)
    except OSError:
        os.replace(aside, path)
        raise
    discard(aside)

def replace_together(writes, suffix='', hint=''):
    """For each (path, write): call write(tmp_path) and flush the file to disk; then rename them all onto their paths,
    in order. The renames come last, together, so a failure while writing leaves every final name as it was, and no
    temporary file outlives a failure. A failed write is an OSError of one line naming the file, then `hint`."""
    tmp_paths = [temporary_path(path, suffix) for path, _write in writes]
    try:
        for (path, write), tmp_path in zip(writes, tmp_paths):
            try:
                write(tmp_path)
                with open(tmp_path, 'rb') as f:
                    os.fsync(f.fileno())
            except OSError as err:
                raise OSError(f'cannot write {path}: {err.strerror or err}{hint}') from err
        for (path, _write), tmp_path in zip(writes, tmp_paths):
            os.replace(tmp_path, path)
    finally:
        for tmp_path in tmp_paths:
            discard(tmp_path)

def replace_atomically(path, write, suffix='', hint=''):
    """replace_together for one file; `suffix` ends the temporary name (e.g. '.png', for writers that go by the extension)."""
    replace_together([(path, write)], suffix=suffix, hint=hint)

def bytes_writer(data):
    def write(tmp_path):
        with open(tmp_path, 'wb') as f:
            f.write(data)
    return write

def torch_writer(obj):
    """A writer of torch.save(obj), serialised in memory first: torch's own file writer turns a full disk into a RuntimeError."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return bytes_writer(buffer.getbuffer())

def write_bytes_atomically(path, data, hint=''):
    replace_atomically(path, bytes_writer(data), hint=hint)

def append_jsonl(path, record):
    """Append one JSON line in a single write; earlier lines are never rewritten."""
    with open(path, 'a', encoding='utf-8') as f:
        f.write(json.dumps(record) + '\n')

#----------------------------------------------------------------------------

def file_sha256(location):
    """sha256 of a local file or of a URL's (cached) download."""
    digest = hashlib.sha256()
    with dnnlib.util.open_url(location, verbose=False) as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()
