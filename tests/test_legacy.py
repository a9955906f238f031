"""Tests for legacy.py: native snapshot loading, force_fp16, TensorFlow pickle conversion and the CLI."""

import importlib
import io
import pickle
import sys
import textwrap
import types
import uuid

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import dnnlib
import legacy

#----------------------------------------------------------------------------

def _snapshot_bytes(**extra):
    return pickle.dumps(dict(G=torch.nn.Linear(2, 2), D=torch.nn.Linear(2, 1), G_ema=torch.nn.Linear(2, 2), **extra))

def test_dict_pickle_gets_missing_keys():
    data = legacy.load_network_pkl(io.BytesIO(_snapshot_bytes(extra_key=5)))
    assert data['training_set_kwargs'] is None and data['augment_pipe'] is None
    assert isinstance(data['G_ema'], torch.nn.Linear) and data['extra_key'] == 5

def test_existing_keys_are_kept():
    data = legacy.load_network_pkl(io.BytesIO(_snapshot_bytes(training_set_kwargs=dict(path='x.zip'), augment_pipe=torch.nn.Identity())))
    assert data['training_set_kwargs'] == dict(path='x.zip') and isinstance(data['augment_pipe'], torch.nn.Identity)

@pytest.mark.parametrize('payload, message', [
    (b'this is a text file, not a pickle', 'not a readable network pickle'),
    (pickle.dumps([1, 2, 3]), 'expected a dict'),
    (pickle.dumps(dict(G=torch.nn.Linear(1, 1))), "'D' is missing"),
    (_snapshot_bytes(training_set_kwargs=[1]), 'training_set_kwargs must be'),
])
def test_not_a_network_pickle_gives_clear_error(payload, message):
    with pytest.raises(ValueError, match=message) as info:
        legacy.load_network_pkl(io.BytesIO(payload))
    assert '\n' not in str(info.value)

#----------------------------------------------------------------------------

_TOY_SRC = textwrap.dedent('''\
    """Toy persistent network with fp16 options, used by the legacy tests."""

    import torch
    from torch_utils import persistence

    @persistence.persistent_class
    class Toy(torch.nn.Module):
        def __init__(self, width, num_fp16_res=0, conv_clamp=None):
            super().__init__()
            self.fc = torch.nn.Linear(width, width)
            self.num_fp16_res = num_fp16_res
            self.conv_clamp = conv_clamp
''')

def test_force_fp16_rebuilds_with_fp16_kwargs_and_same_weights(tmp_path, monkeypatch):
    name = f'toy_legacy_{uuid.uuid4().hex}'
    (tmp_path / f'{name}.py').write_text(_TOY_SRC)
    monkeypatch.syspath_prepend(str(tmp_path))
    toy = importlib.import_module(name)
    G = toy.Toy(3)
    data = legacy.load_network_pkl(io.BytesIO(pickle.dumps(dict(G=G, D=toy.Toy(3, num_fp16_res=4, conv_clamp=256), G_ema=G))), force_fp16=True)
    for key in ['G', 'G_ema']:
        net = data[key]
        assert net.num_fp16_res == 4 and net.conv_clamp == 256
        assert net.init_args == (3,) and net.init_kwargs == dict(num_fp16_res=4, conv_clamp=256)
        assert torch.equal(net.fc.weight, G.fc.weight) and not net.training
    assert data['D'].init_kwargs == dict(num_fp16_res=4, conv_clamp=256)

def test_force_fp16_rejects_non_persistent_networks():
    with pytest.raises(ValueError, match='persistent'):
        legacy.load_network_pkl(io.BytesIO(_snapshot_bytes()), force_fp16=True)

#----------------------------------------------------------------------------

def test_cli_converts_and_writes_atomically(tmp_path):
    src = tmp_path / 'in.pkl'
    src.write_bytes(_snapshot_bytes())
    dest = tmp_path / 'out' / 'converted.pkl'
    result = CliRunner().invoke(legacy.convert_network_pickle, ['--source', str(src), '--dest', str(dest)])
    assert result.exit_code == 0, result.output
    with open(dest, 'rb') as f:
        data = pickle.load(f)
    assert set(data.keys()) == {'G', 'D', 'G_ema', 'training_set_kwargs', 'augment_pipe'}
    assert [p.name for p in dest.parent.iterdir()] == ['converted.pkl'] # No temp file left behind.

def test_cli_reports_bad_source_in_one_line(tmp_path):
    src = tmp_path / 'notes.txt'
    src.write_text('hello')
    result = CliRunner().invoke(legacy.convert_network_pickle, ['--source', str(src), '--dest', str(tmp_path / 'x.pkl')])
    assert result.exit_code == 1
    assert 'Error:' in result.output and 'not a readable network pickle' in result.output
    assert not (tmp_path / 'x.pkl').exists()

#----------------------------------------------------------------------------
# Legacy TensorFlow pickles, rebuilt from synthetic stand-ins for dnnlib.tflib.network.Network.

class _FakeTFNetwork:
    """Pickles like a TF-era Network: global dnnlib.tflib.network.Network + state dict."""
    __module__ = 'dnnlib.tflib.network'
    __qualname__ = 'Network'

    def __init__(self, **state):
        self._state = state
    def __getstate__(self):
        return self._state

def _tf_net(rnd, name, static_kwargs, shapes, components={}, version=4):
    variables = [(var, np.asarray(rnd.randn(*shape), dtype=np.float32)) for var, shape in shapes.items()]
    return _FakeTFNetwork(version=version, name=name, static_kwargs=dnnlib.EasyDict(static_kwargs),
        components=dnnlib.EasyDict(components), variables=variables, build_module_src='', build_func_name=name)

# Tiny StyleGAN2 in TF naming: 8x8 RGB, 2 labels, w_dim 8, channels ch(4) = 16, ch(8) = 8.
_G_KWARGS = dict(latent_size=8, label_size=2, dlatent_size=8, resolution=8, num_channels=3, fmap_base=32, fmap_max=16,
    mapping_layers=2, truncation_psi=0.5, structure='auto')
_G_MAPPING = {'LabelEmbed/weight': [2, 8], 'LabelEmbed/bias': [8], 'Dense0/weight': [16, 8], 'Dense0/bias': [8],
    'Dense1/weight': [8, 8], 'Dense1/bias': [8]}
_G_SYNTHESIS = {'noise0': [1, 1, 4, 4], 'noise1': [1, 1, 8, 8], 'noise2': [1, 1, 8, 8], '4x4/Const/const': [1, 16, 4, 4]}
for _scope, _k, _i, _o in [('4x4/Conv', 3, 16, 16), ('4x4/ToRGB', 1, 16, 3), ('8x8/Conv0_up', 3, 16, 8), ('8x8/Conv1', 3, 8, 8), ('8x8/ToRGB', 1, 8, 3)]:
    _G_SYNTHESIS.update({f'{_scope}/weight': [_k, _k, _i, _o], f'{_scope}/bias': [_o], f'{_scope}/mod_weight': [8, _i], f'{_scope}/mod_bias': [_i]})
    if 'ToRGB' not in _scope:
        _G_SYNTHESIS[f'{_scope}/noise_strength'] = []
_D_KWARGS = dict(label_size=2, resolution=8, num_channels=3, fmap_base=32, fmap_max=16, mapping_layers=1, structure='auto')
_D_VARS = {'8x8/FromRGB/weight': [1, 1, 3, 8], '8x8/FromRGB/bias': [8], '8x8/Conv0/weight': [3, 3, 8, 8], '8x8/Conv0/bias': [8],
    '8x8/Conv1_down/weight': [3, 3, 8, 16], '8x8/Conv1_down/bias': [16], '8x8/Skip/weight': [1, 1, 8, 16],
    'LabelEmbed/weight': [2, 16], 'LabelEmbed/bias': [16], 'Mapping0/weight': [16, 16], 'Mapping0/bias': [16],
    '4x4/Conv/weight': [3, 3, 17, 16], '4x4/Conv/bias': [16], '4x4/Dense0/weight': [256, 16], '4x4/Dense0/bias': [16],
    'Output/weight': [16, 16], 'Output/bias': [16]}

def _tf_generator(rnd, **kwargs):
    mapping = _tf_net(rnd, 'G_mapping', {}, _G_MAPPING)
    synthesis = _tf_net(rnd, 'G_synthesis', {}, _G_SYNTHESIS)
    return _tf_net(rnd, 'G', dict(_G_KWARGS, **kwargs), {'dlatent_avg': [8]}, dict(mapping=mapping, synthesis=synthesis))

def _tf_pickle_bytes(monkeypatch, nets):
    """Pickle with the Network global resolved from a throw-away module, then hide that module again."""
    with monkeypatch.context() as m:
        tflib = types.ModuleType('dnnlib.tflib')
        network_module = types.ModuleType('dnnlib.tflib.network')
        network_module.Network = _FakeTFNetwork
        m.setitem(sys.modules, 'dnnlib.tflib', tflib)
        m.setitem(sys.modules, 'dnnlib.tflib.network', network_module)
        data = pickle.dumps(nets)
    assert b'dnnlib.tflib.network' in data and 'dnnlib.tflib.network' not in sys.modules
    return data

def _tf_values(net):
    state = net._state
    values = {name: value for name, value in state['variables']}
    for comp_name, comp in state['components'].items():
        values.update({f'{comp_name}/{k}': v for k, v in _tf_values(comp).items()})
    return values

def _assert_close(tensor, array):
    assert tuple(tensor.shape) == array.shape
    assert torch.allclose(tensor, torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)))

def test_tf_pickle_is_converted_with_documented_weight_conventions(monkeypatch):
    rnd = np.random.RandomState(0)
    tf_G, tf_Gs = _tf_generator(rnd), _tf_generator(rnd)
    tf_D = _tf_net(rnd, 'D', _D_KWARGS, _D_VARS)
    data = legacy.load_network_pkl(io.BytesIO(_tf_pickle_bytes(monkeypatch, (tf_G, tf_D, tf_Gs))))
    G, D, G_ema = data['G'], data['D'], data['G_ema']
    assert data['training_set_kwargs'] is None and data['augment_pipe'] is None
    assert type(G).__name__ == 'Generator' and type(D).__name__ == 'Discriminator'
    assert G.init_kwargs.channel_base == 64 and G.init_kwargs.mapping_kwargs.w_avg_beta == 0.995

    tf = _tf_values(tf_Gs)
    _assert_close(G_ema.mapping.w_avg, tf['dlatent_avg'])
    _assert_close(G_ema.mapping.embed.weight, tf['mapping/LabelEmbed/weight'].T)
    _assert_close(G_ema.mapping.fc1.weight, tf['mapping/Dense1/weight'].T)
    _assert_close(G_ema.synthesis.b4.const, tf['synthesis/4x4/Const/const'][0])
    _assert_close(G_ema.synthesis.b4.conv1.weight, tf['synthesis/4x4/Conv/weight'].transpose(3, 2, 0, 1))
    _assert_close(G_ema.synthesis.b8.conv0.weight, np.flip(tf['synthesis/8x8/Conv0_up/weight'], (0, 1)).transpose(3, 2, 0, 1))
    _assert_close(G_ema.synthesis.b8.conv1.affine.weight, tf['synthesis/8x8/Conv1/mod_weight'].T)
    _assert_close(G_ema.synthesis.b8.torgb.affine.bias, tf['synthesis/8x8/ToRGB/mod_bias'] + 1)
    _assert_close(G_ema.synthesis.b8.conv0.noise_strength, tf['synthesis/8x8/Conv0_up/noise_strength'])
    _assert_close(G_ema.synthesis.b4.conv1.noise_const, tf['synthesis/noise0'][0, 0])
    _assert_close(G_ema.synthesis.b8.conv0.noise_const, tf['synthesis/noise1'][0, 0])
    _assert_close(G_ema.synthesis.b8.conv1.noise_const, tf['synthesis/noise2'][0, 0])
    _assert_close(G.mapping.fc0.bias, _tf_values(tf_G)['mapping/Dense0/bias'])

    tf = _tf_values(tf_D)
    _assert_close(D.b8.fromrgb.weight, tf['8x8/FromRGB/weight'].transpose(3, 2, 0, 1))
    _assert_close(D.b8.conv1.weight, tf['8x8/Conv1_down/weight'].transpose(3, 2, 0, 1))
    _assert_close(D.b8.skip.weight, tf['8x8/Skip/weight'].transpose(3, 2, 0, 1))
    _assert_close(D.mapping.fc0.weight, tf['Mapping0/weight'].T)
    _assert_close(D.b4.conv.weight, tf['4x4/Conv/weight'].transpose(3, 2, 0, 1))
    _assert_close(D.b4.fc.weight, tf['4x4/Dense0/weight'].T)
    _assert_close(D.b4.out.bias, tf['Output/bias'])

    # Every parameter and buffer except the derived resample filters came from the pickle.
    for net in [G_ema, D]:
        fresh = type(net)(**net.init_kwargs).state_dict()
        for name, tensor in net.state_dict().items():
            assert torch.equal(tensor, fresh[name]) == name.endswith('resample_filter'), name

    c = torch.eye(2)
    img = G_ema(torch.randn(2, 8), c, noise_mode='const')
    assert img.shape == (2, 3, 8, 8) and torch.isfinite(img).all()
    assert D(img, c).shape == (2, 1)

@pytest.mark.parametrize('kwargs, message', [(dict(version=3), 'too old'), (dict(bogus_option=1), "kwarg 'bogus_option'")])
def test_tf_conversion_rejects_unknown_kwargs_and_old_versions(kwargs, message):
    rnd = np.random.RandomState(1)
    net = _tf_generator(rnd)
    net._state['version'] = kwargs.pop('version', 4)
    net._state['static_kwargs'].update(kwargs)
    stub = legacy._TFNetworkStub()
    stub.__dict__.update(net._state)
    stub.__dict__['components'] = dnnlib.EasyDict()
    with pytest.raises(ValueError, match=message):
        legacy.convert_tf_generator(stub)

#----------------------------------------------------------------------------
