"""Tests for dnnlib: EasyDict, name-based construction, time formatting, caching and open_url."""

import ctypes
import functools
import hashlib
import http.server
import os
import pickle
import sys
import threading
import time

import numpy as np
import pytest

import dnnlib
from dnnlib import util

#----------------------------------------------------------------------------

def test_easydict_attributes_map_to_items():
    d = dnnlib.EasyDict(a=1)
    d.b = 2
    assert d == {'a': 1, 'b': 2} and d.a == 1 and d['b'] == 2
    del d.a
    assert 'a' not in d
    with pytest.raises(AttributeError):
        _ = d.missing
    assert not hasattr(d, 'missing')

def test_easydict_pickles_as_dnnlib_util_easydict():
    data = pickle.dumps(dnnlib.EasyDict(x=[1, 2]))
    assert b'dnnlib.util' in data and b'EasyDict' in data
    loaded = pickle.loads(data)
    assert type(loaded) is util.EasyDict and loaded.x == [1, 2]
    assert dnnlib.EasyDict is util.EasyDict and dnnlib.make_cache_dir_path is util.make_cache_dir_path

#----------------------------------------------------------------------------

@pytest.mark.parametrize('seconds, text, brief', [
    (5, '5s', '5s'),
    (187, '3m 07s', '3m 07s'),
    (3600, '1h 00m 00s', '1h 00m'),
    (3723, '1h 02m 03s', '1h 02m'),
    (86400, '1d 00h 00m', '1d 00h'),
    (2 * 86400 + 3 * 3600 + 4 * 60 + 5, '2d 03h 04m', '2d 03h'),
])
def test_format_time_examples(seconds, text, brief):
    assert util.format_time(seconds) == text
    assert util.format_time_brief(seconds) == brief

def test_tuple_product_ctypes_pickleability_and_url_detection():
    assert util.tuple_product((2, 3, 4)) == 24 and util.tuple_product(()) == 1
    assert util.get_dtype_and_ctype('float32') == (np.dtype('float32'), ctypes.c_float)
    assert util.get_dtype_and_ctype(np.uint8) == (np.dtype('uint8'), ctypes.c_ubyte)
    assert util.is_pickleable([1, 'a']) and not util.is_pickleable(lambda: 0)
    assert util.is_url('https://example.com/a.pkl') and not util.is_url('/tmp/a.pkl')
    assert not util.is_url('file:///tmp/a.pkl') and util.is_url('file:///tmp/a.pkl', allow_file_urls=True)

def test_ask_yes_no_repeats_until_clear_answer(monkeypatch):
    answers = iter(['maybe', 'Y'])
    monkeypatch.setattr('builtins.input', lambda _prompt: next(answers))
    assert util.ask_yes_no('Continue?') is True

#----------------------------------------------------------------------------

def test_construct_class_and_call_func_by_name():
    d = util.construct_class_by_name(class_name='dnnlib.EasyDict', a=3)
    assert isinstance(d, dnnlib.EasyDict) and d.a == 3
    od = util.construct_class_by_name([('k', 1)], class_name='collections.OrderedDict')
    assert list(od.items()) == [('k', 1)]
    assert util.call_func_by_name(4, func_name='np.sqrt') == 2
    assert util.get_obj_by_name('os.path.join') is os.path.join
    module, name = util.get_module_from_obj_name('dnnlib.util.EasyDict')
    assert module is util and name == 'EasyDict'
    assert util.get_module_dir_by_obj_name('dnnlib.util.EasyDict') == os.path.dirname(util.__file__)
    with pytest.raises(ImportError, match='no_such_module_xyz'):
        util.get_obj_by_name('no_such_module_xyz.thing')

def test_top_level_function_names():
    assert util.is_top_level_function(util.format_time)
    assert util.get_top_level_function_name(util.format_time) == 'dnnlib.util.format_time'
    assert not util.is_top_level_function(lambda: 0)

#----------------------------------------------------------------------------

def test_logger_tees_stdout_to_file_and_restores(tmp_path):
    log = tmp_path / 'log.txt'
    stdout = sys.stdout
    with util.Logger(file_name=str(log)):
        assert sys.stdout is not stdout
        print('hello log')
    assert sys.stdout is stdout
    assert log.read_text() == 'hello log\n'

def test_make_cache_dir_path_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv('DNNLIB_CACHE_DIR', str(tmp_path / 'env'))
    assert util.make_cache_dir_path('a', 'b') == os.path.join(str(tmp_path / 'env'), 'a', 'b')
    monkeypatch.setattr(util, '_dnnlib_cache_dir', None)
    util.set_cache_dir(str(tmp_path / 'explicit'))
    assert util.make_cache_dir_path('x') == os.path.join(str(tmp_path / 'explicit'), 'x')
    util.set_cache_dir(None)
    monkeypatch.delenv('DNNLIB_CACHE_DIR')
    monkeypatch.setenv('HOME', str(tmp_path / 'home'))
    assert util.make_cache_dir_path() == os.path.join(str(tmp_path / 'home'), '.cache', 'dnnlib')

def test_list_and_copy_files(tmp_path):
    src = tmp_path / 'src'
    (src / 'sub').mkdir(parents=True)
    (src / 'a.py').write_text('a')
    (src / 'sub' / 'b.py').write_text('b')
    (src / 'sub' / 'c.pyc').write_text('c')
    (src / '__pycache__').mkdir()
    (src / '__pycache__' / 'd.py').write_text('d')
    files = util.list_dir_recursively_with_ignore(str(src), ignores=['*.pyc', '__pycache__'])
    assert sorted(rel for _abs, rel in files) == ['a.py', os.path.join('sub', 'b.py')]
    files = util.list_dir_recursively_with_ignore(str(src), ignores=['*.pyc', '__pycache__'], add_base_to_relative=True)
    assert os.path.join('src', 'a.py') in [rel for _abs, rel in files]
    util.copy_files_and_create_dirs([(abs_path, str(tmp_path / 'dst' / rel)) for abs_path, rel in files])
    assert (tmp_path / 'dst' / 'src' / 'sub' / 'b.py').read_text() == 'b'

#----------------------------------------------------------------------------

def test_open_url_local_path_and_file_url(tmp_path):
    path = tmp_path / 'my file.bin'
    path.write_bytes(b'payload')
    with util.open_url(str(path)) as f:
        assert f.read() == b'payload'
    url = 'file://' + str(path).replace(' ', '%20')
    with util.open_url(url) as f:
        assert f.read() == b'payload'
    assert util.open_url(url, return_filename=True) == str(path)

def test_open_url_offline_fails_fast_with_clear_message(tmp_path):
    url = 'http://127.0.0.1:9/x.pkl'
    start = time.time()
    with pytest.raises(IOError) as info:
        util.open_url(url, cache_dir=str(tmp_path), num_attempts=1, verbose=False)
    assert time.time() - start < 10
    message = str(info.value)
    assert '\n' not in message and url in message and 'local path' in message
    assert hashlib.md5(url.encode('utf-8')).hexdigest() in message

def test_open_url_uses_prepopulated_cache_without_network(tmp_path):
    url = 'https://unreachable.invalid/models/net.pkl'
    cached = tmp_path / (hashlib.md5(url.encode('utf-8')).hexdigest() + '_net.pkl')
    cached.write_bytes(b'cached bytes')
    with util.open_url(url, cache_dir=str(tmp_path), num_attempts=1, verbose=False) as f:
        assert f.read() == b'cached bytes'
    assert util.open_url(url, cache_dir=str(tmp_path), return_filename=True) == str(cached)

def test_open_url_downloads_into_cache(tmp_path):
    (tmp_path / 'www').mkdir()
    (tmp_path / 'www' / 'data.bin').write_bytes(b'served')
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path / 'www'))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f'http://127.0.0.1:{server.server_address[1]}/data.bin'
        cache_dir = tmp_path / 'cache'
        with util.open_url(url, cache_dir=str(cache_dir), num_attempts=1, verbose=False) as f:
            assert f.read() == b'served'
        files = os.listdir(cache_dir)
        assert len(files) == 1 and files[0].startswith(hashlib.md5(url.encode('utf-8')).hexdigest() + '_')
    finally:
        server.shutdown()
        server.server_close()
    with util.open_url(url, cache_dir=str(cache_dir), num_attempts=1, verbose=False) as f: # Server gone: cache hit.
        assert f.read() == b'served'

#----------------------------------------------------------------------------
