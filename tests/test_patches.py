"""The runtime adapters in patches/ against stand-ins that behave as NVIDIA's release does, and as no-ops on ours."""

import importlib
import sys
import types
import warnings

import pytest
import torch
import torch.utils.cpp_extension

import patches
from patches import custom_ops
from patches import infinite_sampler
from patches import parse_version

#----------------------------------------------------------------------------
# pkg_resources.parse_version

# The release's gradfix modules import parse_version from setuptools' removed pkg_resources at import time; the
# stand-in does the same import by name (same ModuleNotFoundError, e.name == 'pkg_resources').
RELEASE_GRADFIX = '''
import importlib
import torch
parse_version = importlib.import_module('pkg_resources').parse_version
_use_pytorch_1_11_api = parse_version(torch.__version__) >= parse_version('1.11.0a')
'''

def test_gradfix_module_imports_where_pkg_resources_is_gone(tmp_path, monkeypatch):
    (tmp_path / 'standin_gradfix.py').write_text(RELEASE_GRADFIX)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(sys.modules, 'pkg_resources', None) # Unimportable, whatever setuptools is installed.
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module('standin_gradfix')
    module = parse_version.provide_parse_version('standin_gradfix')
    assert module._use_pytorch_1_11_api
    assert parse_version.provide_parse_version('standin_gradfix') is module # Idempotent.
    sys.modules.pop('standin_gradfix')

def test_parse_version_shim_leaves_other_import_errors_alone(tmp_path, monkeypatch):
    (tmp_path / 'standin_broken.py').write_text('import no_such_module_anywhere\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(sys.modules, 'pkg_resources', None)
    with pytest.raises(ModuleNotFoundError):
        parse_version.provide_parse_version('standin_broken')
    assert sys.modules['pkg_resources'] is None

#----------------------------------------------------------------------------
# Sampler.__init__(data_source)

class ReleaseInfiniteSampler(torch.utils.data.Sampler):
    def __init__(self, dataset):
        super().__init__(dataset)
        self.dataset = dataset

@pytest.fixture
def restore_sampler_init():
    saved = vars(torch.utils.data.Sampler).get('__init__')
    yield
    if saved is None:
        if '__init__' in vars(torch.utils.data.Sampler):
            del torch.utils.data.Sampler.__init__
    else:
        torch.utils.data.Sampler.__init__ = saved

def test_release_sampler_builds_once_adapted(restore_sampler_init): # pylint: disable=unused-argument,redefined-outer-name
    infinite_sampler.accept_data_source(ReleaseInfiniteSampler)
    infinite_sampler.accept_data_source(ReleaseInfiniteSampler)
    assert ReleaseInfiniteSampler([1, 2, 3]).dataset == [1, 2, 3]

def test_sampler_left_alone_for_our_layer(restore_sampler_init): # pylint: disable=unused-argument,redefined-outer-name
    from torch_utils import misc # pylint: disable=import-outside-toplevel
    before = vars(torch.utils.data.Sampler).get('__init__')
    infinite_sampler.accept_data_source(misc.InfiniteSampler)
    assert vars(torch.utils.data.Sampler).get('__init__') is before

#----------------------------------------------------------------------------
# custom_ops.get_plugin and the ops' reference path

def release_op_module(name):
    """An op module as the release writes one: `_init` builds the plugin via get_plugin, which loads then imports by name."""
    op = types.ModuleType(name)
    exec('''
import importlib
import torch.utils.cpp_extension
_plugin = None
def get_plugin(module_name):
    torch.utils.cpp_extension.load(name=module_name, sources=[])
    return importlib.import_module(module_name)
def _init():
    global _plugin
    if _plugin is None:
        _plugin = get_plugin(PLUGIN_NAME)
    return True
def op(x, impl='cuda'):
    if impl == 'cuda' and _init():
        return _plugin.op(x)
    return x + 1 # Reference path.
''', op.__dict__)
    op.PLUGIN_NAME = name + '_plugin'
    return op

def fake_load(calls):
    """cpp_extension.load as current PyTorch does it: returns the module, registers nothing."""
    def load(name, sources, **_kwargs): # pylint: disable=unused-argument
        calls.append(name)
        plugin = types.ModuleType(name)
        plugin.op = lambda x: x + 2
        return plugin
    return load

def test_release_plugin_loads_when_registered(monkeypatch):
    calls = []
    monkeypatch.setattr(torch.utils.cpp_extension, 'load', fake_load(calls))
    op = release_op_module('standin_op_a')
    with pytest.raises(ModuleNotFoundError):
        op.op(torch.zeros([]))
    custom_ops.adapt_plugin_ops([op])
    custom_ops.adapt_plugin_ops([op])
    assert op.op(torch.zeros([])).item() == 2
    assert not hasattr(torch.utils.cpp_extension.load.__wrapped__, 'registers_module') # Wrapped once, not twice.
    sys.modules.pop('standin_op_a_plugin')

def test_release_op_takes_reference_path_when_plugin_cannot_build(monkeypatch):
    calls = []
    def failing_load(name, sources, **_kwargs): # pylint: disable=unused-argument
        calls.append(name)
        raise RuntimeError('Ninja is required to load C++ extensions')
    monkeypatch.setattr(torch.utils.cpp_extension, 'load', failing_load)
    op = release_op_module('standin_op_b')
    custom_ops.adapt_plugin_ops([op])
    with pytest.warns(UserWarning, match='reference implementation'):
        assert op.op(torch.zeros([])).item() == 1
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        assert op.op(torch.zeros([])).item() == 1
    assert calls == ['standin_op_b_plugin'] # One build attempt, one warning.

#----------------------------------------------------------------------------

def test_patches_are_no_ops_on_our_layer(restore_sampler_init): # pylint: disable=unused-argument,redefined-outer-name
    load = torch.utils.cpp_extension.load
    sampler_init = vars(torch.utils.data.Sampler).get('__init__')
    had_pkg_resources = 'pkg_resources' in sys.modules
    patches.apply()
    assert torch.utils.cpp_extension.load is load
    assert vars(torch.utils.data.Sampler).get('__init__') is sampler_init
    assert ('pkg_resources' in sys.modules) == had_pkg_resources

#----------------------------------------------------------------------------
