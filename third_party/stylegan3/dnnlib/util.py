"""Miscellaneous utilities: attribute dicts, logging, name-based construction and URL/cache handling."""

import ctypes
import fnmatch
import glob
import hashlib
import html
import importlib
import inspect
import io
import os
import pickle
import re
import shutil
import sys
import tempfile
import time
import urllib.parse
import uuid

import numpy as np

#----------------------------------------------------------------------------

class EasyDict(dict):
    """Dict whose items are also reachable as attributes (`d.key` is `d['key']`)."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name)

    def __setattr__(self, name, value):
        self[name] = value

    def __delattr__(self, name):
        del self[name]

#----------------------------------------------------------------------------

class Logger:
    """Tees everything written to stdout/stderr into an optional log file while it is installed."""

    def __init__(self,
        file_name       = None,     # Log file path, or None to only forward to the console.
        file_mode       = 'w',      # Mode for opening the log file.
        should_flush    = True,     # Flush after every write so that the log survives crashes.
    ):
        self.file = open(file_name, file_mode) if file_name is not None else None
        self.should_flush = should_flush
        self.stdout = sys.stdout
        self.stderr = sys.stderr
        sys.stdout = self
        sys.stderr = self

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc_value, traceback):
        self.close()

    def write(self, text):
        if isinstance(text, bytes):
            text = text.decode()
        if len(text) == 0: # Some callers write empty strings; skip them to avoid needless flushes.
            return
        if self.file is not None:
            self.file.write(text)
        self.stdout.write(text)
        if self.should_flush:
            self.flush()

    def flush(self):
        if self.file is not None:
            self.file.flush()
        self.stdout.flush()

    def close(self):
        """Flush, restore the original streams if we are still installed, and close the file."""
        self.flush()
        if sys.stdout is self:
            sys.stdout = self.stdout
        if sys.stderr is self:
            sys.stderr = self.stderr
        if self.file is not None:
            self.file.close()
            self.file = None

#----------------------------------------------------------------------------

_dnnlib_cache_dir = None

def set_cache_dir(path):
    global _dnnlib_cache_dir
    _dnnlib_cache_dir = path

def make_cache_dir_path(*paths):
    """Path inside the dnnlib cache: set_cache_dir(), $DNNLIB_CACHE_DIR, ~/.cache/dnnlib, or a temp dir."""
    if _dnnlib_cache_dir is not None:
        return os.path.join(_dnnlib_cache_dir, *paths)
    if 'DNNLIB_CACHE_DIR' in os.environ:
        return os.path.join(os.environ['DNNLIB_CACHE_DIR'], *paths)
    if 'HOME' in os.environ:
        return os.path.join(os.environ['HOME'], '.cache', 'dnnlib', *paths)
    if 'USERPROFILE' in os.environ:
        return os.path.join(os.environ['USERPROFILE'], '.cache', 'dnnlib', *paths)
    return os.path.join(tempfile.gettempdir(), '.cache', 'dnnlib', *paths)

#----------------------------------------------------------------------------

def _format_duration(seconds, max_units):
    """The most significant non-zero unit and those below it, at most max_units of them, e.g. '1h 02m 03s'."""
    s = int(np.rint(seconds))
    units = [(s // 86400, 'd'), (s // 3600 % 24, 'h'), (s // 60 % 60, 'm'), (s % 60, 's')]
    while len(units) > 1 and units[0][0] == 0:
        units = units[1:]
    (lead, lead_unit), *rest = units[:max_units]
    return ' '.join([f'{lead}{lead_unit}'] + [f'{value:02d}{unit}' for value, unit in rest])

def format_time(seconds):
    """Human-readable duration, e.g. '45s', '3m 07s', '1h 02m 03s', '2d 03h 04m'."""
    return _format_duration(seconds, max_units=3)

def format_time_brief(seconds):
    """Like format_time() but with only the two most significant units, e.g. '1h 02m'."""
    return _format_duration(seconds, max_units=2)

#----------------------------------------------------------------------------

def ask_yes_no(question):
    """Ask on the console until the answer is a recognisable yes or no."""
    answers = {'y': True, 'yes': True, 't': True, 'true': True, 'on': True, '1': True,
               'n': False, 'no': False, 'f': False, 'false': False, 'off': False, '0': False}
    while True:
        answer = input(f'{question} [y/n] ').strip().lower()
        if answer in answers:
            return answers[answer]

def tuple_product(t):
    """Product of the elements of a tuple (1 for an empty tuple)."""
    result = 1
    for v in t:
        result *= v
    return result

_str_to_ctype = {
    'uint8':    ctypes.c_ubyte,
    'uint16':   ctypes.c_uint16,
    'uint32':   ctypes.c_uint32,
    'uint64':   ctypes.c_uint64,
    'int8':     ctypes.c_byte,
    'int16':    ctypes.c_int16,
    'int32':    ctypes.c_int32,
    'int64':    ctypes.c_int64,
    'float32':  ctypes.c_float,
    'float64':  ctypes.c_double,
}

def get_dtype_and_ctype(type_obj):
    """Numpy dtype and matching ctypes type for a type given as a name, numpy dtype or Python type."""
    if isinstance(type_obj, str):
        type_str = type_obj
    elif hasattr(type_obj, '__name__'):
        type_str = type_obj.__name__
    elif hasattr(type_obj, 'name'):
        type_str = type_obj.name
    else:
        raise ValueError(f'Cannot infer a data type from {type_obj!r}')
    if type_str not in _str_to_ctype:
        raise ValueError(f'Unsupported data type {type_str!r}; expected one of {sorted(_str_to_ctype)}')
    dtype = np.dtype(type_str)
    ctype = _str_to_ctype[type_str]
    assert dtype.itemsize == ctypes.sizeof(ctype)
    return dtype, ctype

def is_pickleable(obj):
    try:
        with io.BytesIO() as stream:
            pickle.dump(obj, stream)
        return True
    except Exception:
        return False

#----------------------------------------------------------------------------
# Looking up functions and classes by their dotted names.

def get_module_from_obj_name(obj_name):
    """Split a dotted name into (imported module, local name inside it), trying the longest module first."""
    obj_name = re.sub(r'^np\.', 'numpy.', obj_name)
    obj_name = re.sub(r'^tf\.', 'tensorflow.', obj_name)
    parts = obj_name.split('.')
    for i in range(len(parts), 0, -1):
        module_name = '.'.join(parts[:i])
        local_name = '.'.join(parts[i:])
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            # Only skip if the missing module is this candidate (or a parent); real import errors propagate.
            if e.name is not None and (module_name == e.name or module_name.startswith(e.name + '.')):
                continue
            raise
        try:
            get_obj_from_module(module, local_name)
        except AttributeError:
            continue
        return module, local_name
    raise ImportError(f'Cannot find object {obj_name!r}: no importable module defines it')

def get_obj_from_module(module, obj_name):
    """Follow a dotted attribute path inside a module ('' returns the module itself)."""
    if obj_name == '':
        return module
    obj = module
    for part in obj_name.split('.'):
        obj = getattr(obj, part)
    return obj

def get_obj_by_name(name):
    module, obj_name = get_module_from_obj_name(name)
    return get_obj_from_module(module, obj_name)

def call_func_by_name(*args, func_name=None, **kwargs):
    """Look up a function by its dotted name and call it with the given arguments."""
    assert func_name is not None
    func_obj = get_obj_by_name(func_name)
    if not callable(func_obj):
        raise TypeError(f'{func_name!r} is not callable')
    return func_obj(*args, **kwargs)

def construct_class_by_name(*args, class_name=None, **kwargs):
    """Look up a class by its dotted name and instantiate it with the given arguments."""
    return call_func_by_name(*args, func_name=class_name, **kwargs)

def get_module_dir_by_obj_name(obj_name):
    module, _obj_name = get_module_from_obj_name(obj_name)
    return os.path.dirname(inspect.getfile(module))

def is_top_level_function(obj):
    return callable(obj) and obj.__name__ in sys.modules[obj.__module__].__dict__

def get_top_level_function_name(obj):
    """Dotted name of a top-level function; for __main__ the script's file name stands in for the module."""
    assert is_top_level_function(obj)
    module = obj.__module__
    if module == '__main__':
        module = os.path.splitext(os.path.basename(sys.modules[module].__file__))[0]
    return module + '.' + obj.__name__

#----------------------------------------------------------------------------
# File system helpers.

def list_dir_recursively_with_ignore(dir_path, ignores=None, add_base_to_relative=False):
    """All files under dir_path as (absolute path, relative path) pairs, skipping names matching `ignores`."""
    assert os.path.isdir(dir_path)
    base_name = os.path.basename(os.path.normpath(dir_path))
    ignores = ignores or []
    result = []
    for root, dirs, files in os.walk(dir_path, topdown=True):
        dirs[:] = [d for d in dirs if not any(fnmatch.fnmatch(d, pat) for pat in ignores)]
        for name in files:
            if any(fnmatch.fnmatch(name, pat) for pat in ignores):
                continue
            abs_path = os.path.join(root, name)
            rel_path = os.path.relpath(abs_path, dir_path)
            if add_base_to_relative:
                rel_path = os.path.join(base_name, rel_path)
            result.append((abs_path, rel_path))
    return result

def copy_files_and_create_dirs(files):
    """Copy (src, dst) pairs, creating destination directories as needed."""
    for src, dst in files:
        dst_dir = os.path.dirname(dst)
        if dst_dir:
            os.makedirs(dst_dir, exist_ok=True)
        shutil.copyfile(src, dst)

#----------------------------------------------------------------------------
# URLs and downloads.

def is_url(obj, allow_file_urls=False):
    """True for strings that look like downloadable URLs (scheme + dotted host)."""
    if not isinstance(obj, str) or '://' not in obj:
        return False
    if allow_file_urls and obj.startswith('file://'):
        return True
    try:
        for candidate in (obj, urllib.parse.urljoin(obj, '/')):
            res = urllib.parse.urlparse(candidate)
            if not res.scheme or not res.netloc or '.' not in res.netloc:
                return False
    except ValueError:
        return False
    return True

def open_url(url, cache_dir=None, num_attempts=10, verbose=True, return_filename=False, cache=True):
    """Open a local path, file:// URL or http(s) URL as a binary file object (or return its file name).

    Downloads are cached under `cache_dir` as '<md5(url)>_<name>' so that machines without internet
    access can be prepared by copying the file there.
    """
    assert num_attempts >= 1
    assert not (return_filename and not cache)

    # Local paths and file:// URLs.
    if not re.match('^[a-z]+://', url):
        return url if return_filename else open(url, 'rb')
    if url.startswith('file://'):
        filename = urllib.parse.unquote(urllib.parse.urlparse(url).path)
        if re.match(r'^/[a-zA-Z]:', filename): # 'file:///C:/x' parses to '/C:/x' on Windows.
            filename = filename[1:]
        return filename if return_filename else open(filename, 'rb')
    if not is_url(url):
        raise ValueError(f'Not a valid URL: {url!r}')

    # Cache hit?
    if cache_dir is None:
        cache_dir = make_cache_dir_path('downloads')
    url_md5 = hashlib.md5(url.encode('utf-8')).hexdigest()
    if cache:
        cache_files = glob.glob(os.path.join(cache_dir, url_md5 + '_*'))
        if len(cache_files) == 1:
            filename = cache_files[0]
            return filename if return_filename else open(filename, 'rb')

    # Download, retrying on transient failures.
    import requests
    url_name = None
    url_data = None
    last_error = None
    with requests.Session() as session:
        if verbose:
            print(f'Downloading {url} ...', end='', flush=True)
        for attempts_left in reversed(range(num_attempts)):
            try:
                url_name, url_data = _download(session, url)
                if verbose:
                    print(' done')
                break
            except KeyboardInterrupt:
                raise
            except Exception as e:
                last_error = e
                if verbose:
                    print('.', end='', flush=True)
                if attempts_left and not isinstance(e, requests.ConnectionError): # Offline machines fail fast; server trouble gets time.
                    time.sleep(min(2 ** (num_attempts - attempts_left - 1), 8))
    if url_data is None:
        if verbose:
            print(' failed')
        raise IOError(f'Could not download {url} ({type(last_error).__name__}); pass a local path instead, '
            f'or place the file in {cache_dir} under a name starting with {url_md5}_')

    # Save to the cache atomically: write a temp file, then rename.
    if cache:
        safe_name = re.sub(r'[^0-9a-zA-Z-._]', '_', url_name)
        safe_name = safe_name[:min(len(safe_name), 128)]
        cache_file = os.path.join(cache_dir, url_md5 + '_' + safe_name)
        temp_file = os.path.join(cache_dir, 'tmp_' + uuid.uuid4().hex + '_' + url_md5 + '_' + safe_name)
        os.makedirs(cache_dir, exist_ok=True)
        with open(temp_file, 'wb') as f:
            f.write(url_data)
        os.replace(temp_file, cache_file)
        if return_filename:
            return cache_file
    return io.BytesIO(url_data)

def _download(session, url, follow_confirmation=True):
    """One download attempt -> (name for the cache file, bytes). Handles Google Drive's confirmation page."""
    with session.get(url, timeout=30) as res:
        res.raise_for_status()
        if len(res.content) == 0:
            raise IOError('No data received')
        if len(res.content) < 8192:
            content_str = res.content.decode('utf-8', errors='replace')
            if 'download_warning' in res.headers.get('Set-Cookie', ''):
                links = [html.unescape(link) for link in content_str.split('"') if 'export=download' in link]
                if follow_confirmation and len(links) == 1:
                    return _download(session, urllib.parse.urljoin(url, links[0]), follow_confirmation=False)
                raise IOError('Google Drive virus checker nag')
            if 'Google Drive - Quota exceeded' in content_str:
                raise IOError('Google Drive download quota exceeded -- try again later')
        match = re.search(r'filename="([^"]*)"', res.headers.get('Content-Disposition', ''))
        return (match[1] if match else url), res.content

#----------------------------------------------------------------------------
