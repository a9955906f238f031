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

@pytest.fixture
def triton_interpreter(monkeypatch):
    """Run the ops' Triton kernels on CPU tensors through Triton's interpreter. `triton.jit` reads
    TRITON_INTERPRET when a kernel is defined, so the kernel modules are first imported here, with the
    variable set (Triton itself may have been imported before: torch.profiler imports it)."""
    pytest.importorskip('triton')
    from torch_utils.ops import triton_select
    monkeypatch.setenv('TRITON_INTERPRET', '1')
    monkeypatch.delenv(triton_select.ENV, raising=False)
    from torch_utils.ops import bias_act_triton, filtered_lrelu_triton, upfirdn2d_triton
    for kernel in (upfirdn2d_triton._fir_kernel, bias_act_triton._forward_kernel, filtered_lrelu_triton._forward_kernel):
        assert type(kernel).__name__ == 'InterpretedFunction', 'a Triton kernel module was imported before TRITON_INTERPRET=1 was set'
