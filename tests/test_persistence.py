"""Tests for torch_utils.persistence: the pickle format shared with NVIDIA's StyleGAN3 release."""

import copy
import importlib
import io
import json
import os
import pickle
import subprocess
import sys
import textwrap
import uuid

import pytest
import torch

import dnnlib
from torch_utils import persistence

_STYLEGAN3_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'third_party', 'stylegan3')

_MODULE_SRC = textwrap.dedent('''\
    """Toy module with persistent classes, used by the persistence tests."""

    import torch
    from torch_utils import persistence

    @persistence.persistent_class
    class Scaler(torch.nn.Module):
        def __init__(self, channels, gain=2.0, options={}):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.arange(channels, dtype=torch.float32) + 1)
            self.register_buffer('offset', torch.full([channels], 0.5))
            self.gain = gain

        def forward(self, x):
            return x * self.weight * self.gain + self.offset

    @persistence.persistent_class
    class Counter:
        def __init__(self, start=0):
            self.value = start

        def step(self):
            self.value += 1
            return self.value

    @persistence.persistent_class
    class FastCounter(Counter):
        def step(self):
            self.value += 10
            return self.value
''')

#----------------------------------------------------------------------------

def _import_toy_module(tmp_path, monkeypatch, src=_MODULE_SRC):
    """Write the toy module under a unique name and import it the normal way."""
    name = f'toy_persistent_{uuid.uuid4().hex}'
    src_dir = tmp_path / 'src'
    src_dir.mkdir(exist_ok=True)
    (src_dir / f'{name}.py').write_text(src)
    monkeypatch.syspath_prepend(str(src_dir))
    return importlib.import_module(name)

def _read_meta(data):
    """Unpickle with the reconstruct function replaced by identity, exposing the raw meta dict."""
    class MetaUnpickler(pickle.Unpickler):
        def find_class(self, module, name):
            if (module, name) == ('torch_utils.persistence', '_reconstruct_persistent_obj'):
                return lambda meta: meta
            return super().find_class(module, name)
    return MetaUnpickler(io.BytesIO(data)).load()

def _recorded_globals(data):
    """Set of 'module.name' globals that unpickling the data resolves."""
    found = set()
    class RecordingUnpickler(pickle.Unpickler):
        def find_class(self, module, name):
            found.add(f'{module}.{name}')
            return super().find_class(module, name)
    RecordingUnpickler(io.BytesIO(data)).load()
    return found

class _NvidiaStylePickle:
    """Pickles exactly as NVIDIA's release writes a persistent object: reconstruct(meta)."""
    def __init__(self, meta):
        self.meta = meta
    def __reduce__(self):
        return (persistence._reconstruct_persistent_obj, (self.meta,))

#----------------------------------------------------------------------------

def test_class_source_travels_in_pickle_to_fresh_process(tmp_path, monkeypatch):
    toy = _import_toy_module(tmp_path, monkeypatch)
    net = toy.Scaler(3, gain=1.5, options=dnnlib.EasyDict(mode='x'))
    with torch.no_grad():
        net.weight.mul_(10)
    x = torch.tensor([1.0, -2.0, 3.0])
    expected = net(x).tolist()
    pkl = tmp_path / 'net.pkl'
    pkl.write_bytes(pickle.dumps(dict(G=net)))

    script = textwrap.dedent(f'''
        import importlib.util, json, pickle, sys
        sys.path.insert(0, {_STYLEGAN3_DIR!r})
        assert importlib.util.find_spec({toy.__name__!r}) is None, 'defining module must not be importable'
        import torch
        with open({str(pkl)!r}, 'rb') as f:
            net = pickle.load(f)['G']
        print(json.dumps(dict(
            out=net(torch.tensor([1.0, -2.0, 3.0])).tolist(),
            cls=type(net).__name__,
            module_is_exec=any(k.startswith('_imported_module_') for k in sys.modules),
            init_kwargs=net.init_kwargs,
            kwargs_type=type(net.init_kwargs['options']).__module__ + '.' + type(net.init_kwargs['options']).__name__,
            src_ok=type(net)._orig_module_src == {_MODULE_SRC!r},
        )))
    ''')
    run_dir = tmp_path / 'run'
    run_dir.mkdir()
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    proc = subprocess.run([sys.executable, '-c', script], cwd=run_dir, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result['out'] == pytest.approx(expected)
    assert result['cls'] == 'Scaler'
    assert result['module_is_exec']
    assert result['init_kwargs'] == dict(gain=1.5, options=dict(mode='x'))
    assert result['kwargs_type'] == 'dnnlib.util.EasyDict'
    assert result['src_ok']

def test_meta_has_exactly_the_documented_fields(tmp_path, monkeypatch):
    toy = _import_toy_module(tmp_path, monkeypatch)
    meta = _read_meta(pickle.dumps(toy.Scaler(2)))
    assert type(meta) is dict
    assert set(meta.keys()) == {'type', 'version', 'module_src', 'class_name', 'state'}
    assert meta['type'] == 'class' and meta['version'] == 6 and persistence._version == 6
    assert meta['module_src'] == _MODULE_SRC
    assert meta['class_name'] == 'Scaler'
    for key in ['_parameters', '_buffers', '_modules', 'training', '_init_args', '_init_kwargs', 'gain']:
        assert key in meta['state']
    assert meta['state']['_init_args'] == (2,)

def test_pickle_references_only_globals_known_to_the_original_loader(tmp_path, monkeypatch):
    toy = _import_toy_module(tmp_path, monkeypatch)
    data = pickle.dumps(dict(G=toy.Scaler(2, options=dnnlib.EasyDict(a=1)), C=toy.Counter(3)))
    allowed = {'torch_utils.persistence._reconstruct_persistent_obj', 'dnnlib.util.EasyDict', 'collections.OrderedDict',
        'torch._utils._rebuild_parameter', 'torch._utils._rebuild_tensor_v2', 'torch.storage._load_from_bytes'}
    found = _recorded_globals(data)
    assert 'torch_utils.persistence._reconstruct_persistent_obj' in found
    assert found <= allowed, found - allowed

def test_nvidia_format_pickle_loads(tmp_path):
    # Source that no importable module has: the loader must exec it into a fresh module.
    src = _MODULE_SRC.replace('Toy module', f'Toy module {uuid.uuid4().hex}')
    meta = dict(type='class', version=6, module_src=src, class_name='Counter',
        state=dict(value=5, _init_args=(), _init_kwargs=dict(start=5)))
    obj = pickle.loads(pickle.dumps(_NvidiaStylePickle(meta)))
    assert type(obj).__name__ == 'Counter'
    assert persistence.is_persistent(obj)
    assert obj.step() == 6
    assert obj.init_kwargs == dict(start=5) and isinstance(obj.init_kwargs, dnnlib.EasyDict)
    module_names = [name for name, module in sys.modules.items() if getattr(module, 'Counter', None) is type(obj)]
    assert len(module_names) == 1 and module_names[0].startswith('_imported_module_')

def test_identical_source_gives_identical_classes(tmp_path):
    src = _MODULE_SRC.replace('Toy module', f'Toy module {uuid.uuid4().hex}')
    meta = dict(type='class', version=6, module_src=src, class_name='Counter', state=dict(value=1))
    a = pickle.loads(pickle.dumps(_NvidiaStylePickle(meta)))
    b = pickle.loads(pickle.dumps(_NvidiaStylePickle(meta)))
    assert type(a) is type(b)

def test_repickling_preserves_embedded_source_verbatim():
    src = _MODULE_SRC.replace('Toy module', f'Toy module {uuid.uuid4().hex}') + '\n# trailing comment kept\n'
    meta = dict(type='class', version=6, module_src=src, class_name='Counter', state=dict(value=2))
    obj = pickle.loads(pickle.dumps(_NvidiaStylePickle(meta)))
    meta2 = _read_meta(pickle.dumps(obj))
    assert meta2['module_src'] == src
    assert meta2['state'] == dict(value=2)

def test_import_hook_can_patch_module_source():
    marker = f'Toy module {uuid.uuid4().hex}'
    src = _MODULE_SRC.replace('Toy module', marker)
    seen = []
    def hook(meta):
        assert isinstance(meta, dnnlib.EasyDict) and isinstance(meta.state, dnnlib.EasyDict)
        if marker in meta.module_src:
            seen.append(sorted(meta.keys()))
            meta.module_src = meta.module_src.replace('self.value += 1', 'self.value += 100')
        return meta
    persistence.import_hook(hook)
    try:
        meta = dict(type='class', version=6, module_src=src, class_name='Counter', state=dict(value=0))
        obj = pickle.loads(pickle.dumps(_NvidiaStylePickle(meta)))
    finally:
        persistence._import_hooks.remove(hook)
    assert seen == [['class_name', 'module_src', 'state', 'type', 'version']]
    assert obj.step() == 100

def test_wrong_version_is_rejected():
    meta = dict(type='class', version=5, module_src=_MODULE_SRC, class_name='Counter', state=dict(value=0))
    with pytest.raises(AssertionError):
        pickle.loads(pickle.dumps(_NvidiaStylePickle(meta)))

def test_init_args_and_kwargs_are_deep_copies(tmp_path, monkeypatch):
    toy = _import_toy_module(tmp_path, monkeypatch)
    options = dict(depth=[1, 2])
    net = toy.Scaler(4, gain=3.0, options=options)
    options['depth'].append(3)
    assert net.init_args == (4,)
    assert net.init_kwargs == dict(gain=3.0, options=dict(depth=[1, 2]))
    assert isinstance(net.init_kwargs, dnnlib.EasyDict) and net.init_kwargs.gain == 3.0
    net.init_kwargs.options['depth'].append(9)
    assert net.init_kwargs.options['depth'] == [1, 2]

def test_deepcopy_and_roundtrip_keep_class_and_values(tmp_path, monkeypatch):
    toy = _import_toy_module(tmp_path, monkeypatch)
    net = toy.Scaler(3)
    for clone in [copy.deepcopy(net), pickle.loads(pickle.dumps(net))]:
        assert type(clone) is type(net)
        assert clone.weight is not net.weight
        assert torch.equal(clone(torch.ones(3)), net(torch.ones(3)))
        assert clone.init_args == (3,)

def test_subclass_of_persistent_class_pickles_as_itself(tmp_path, monkeypatch):
    toy = _import_toy_module(tmp_path, monkeypatch)
    data = pickle.dumps(toy.FastCounter(start=1))
    assert _read_meta(data)['class_name'] == 'FastCounter'
    obj = pickle.loads(data)
    assert type(obj) is toy.FastCounter and obj.step() == 11 and obj.init_kwargs == dict(start=1)

def test_decorator_is_idempotent_and_is_persistent(tmp_path, monkeypatch):
    toy = _import_toy_module(tmp_path, monkeypatch)
    assert persistence.persistent_class(toy.Counter) is toy.Counter
    assert persistence.is_persistent(toy.Counter) and persistence.is_persistent(toy.Counter(1))
    assert not persistence.is_persistent(torch.nn.Linear(1, 1)) and not persistence.is_persistent([1])

def test_unpickleable_constructor_argument_is_rejected(tmp_path, monkeypatch):
    toy = _import_toy_module(tmp_path, monkeypatch)
    with pytest.raises((pickle.PicklingError, AttributeError)): # AttributeError: "Can't pickle local object" on some versions.
        toy.Counter(start=lambda: 0)
    toy.Counter(start=torch.zeros(2)) # Tensors are fine.

#----------------------------------------------------------------------------
