"""Test set-up: the repository root and the upstream layer on sys.path, as in any script here."""

import os
import sys

_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for _path in (_root, os.path.join(_root, 'third_party', 'stylegan3')):
    if _path not in sys.path:
        sys.path.insert(0, _path)

#----------------------------------------------------------------------------

import pytest

@pytest.fixture
def cuda_formulation(monkeypatch):
    """Run upfirdn2d's and filtered_lrelu's CUDA formulation (banded matrix products) on CPU."""
    from torch_utils.ops import upfirdn2d
    monkeypatch.setattr(upfirdn2d, '_matmul_path', lambda x, impl: impl == 'cuda')

@pytest.fixture
def fp16_on_cpu(monkeypatch):
    """Run the use_fp16 layers in float16 on CPU, as they run on CUDA."""
    from training import networks_stylegan2, networks_stylegan3
    from svc_plugin import networks
    for module in (networks_stylegan2, networks_stylegan3, networks):
        monkeypatch.setattr(module, 'FP16_DEVICES', ('cuda', 'cpu'))
