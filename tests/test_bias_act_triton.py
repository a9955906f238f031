"""Tests for torch_utils.ops.bias_act_triton, run on CPU through Triton's interpreter: bias_act(impl='triton')
against the plain path (values, first and second order, dtypes, layouts) and its fallback for the rest."""

import pytest
import torch

from torch_utils.ops import bias_act

#----------------------------------------------------------------------------

@pytest.fixture
def kernel_calls(monkeypatch):
    """Count the forward and gradient kernel launches."""
    from torch_utils.ops import bias_act_triton
    calls = []
    for name in ('_forward_kernel', '_grad_kernel'):
        kernel = getattr(bias_act_triton, name)
        monkeypatch.setattr(bias_act_triton, name, _Counted(kernel, name, calls))
    return calls

class _Counted:
    """A kernel whose launches (kernel[grid](...)) are recorded by name."""
    def __init__(self, kernel, name, calls):
        self.kernel, self.name, self.calls = kernel, name, calls
    def __getitem__(self, grid):
        self.calls.append(self.name)
        return self.kernel[grid]

#----------------------------------------------------------------------------

_cases = [
    # shape, dim, clamp, channels_last
    ([2, 5, 3, 4], 1, None, False),
    ([2, 5, 3, 4], 1, 0.75, True),
    ([4, 3, 2], 0, 0.25, False),
]

@pytest.mark.parametrize('act', ['linear', 'relu', 'lrelu'])
@pytest.mark.parametrize('shape,dim,clamp,channels_last', _cases)
def test_triton_bias_act_matches_plain_path_to_second_order(act, shape, dim, clamp, channels_last, triton_interpreter, kernel_calls):
    gen = torch.Generator().manual_seed(31)
    x0 = torch.randn(shape, dtype=torch.float64, generator=gen) * 2
    x0 = x0.contiguous(memory_format=torch.channels_last) if channels_last else x0
    b0 = torch.randn([shape[dim]], dtype=torch.float64, generator=gen)
    w = torch.randn(shape, dtype=torch.float64, generator=gen)
    results = []
    for impl in ('triton', 'ref'):
        x, b = x0.clone().requires_grad_(True), b0.clone().requires_grad_(True)
        y = bias_act.bias_act(x, b, dim, act, alpha=0.3, gain=1.7, clamp=clamp, impl=impl)
        gx, gb = torch.autograd.grad((y.square() * w).sum(), [x, b], create_graph=True) # dy = 2 y w depends on x
        r1 = torch.autograd.grad(gx.square().sum() + gb.square().sum(), [x, b])          # through the gradient (R1)
        results.append([y, gx, gb, *r1])
    assert results[0][0].stride() == x0.stride()
    for ours, ref in zip(*results):
        assert torch.allclose(ours, ref, rtol=1e-7, atol=1e-7) # The kernels take the clamp as a float32 scalar.
    # One forward; the gradient kernel in the backward and twice in the double backward (through dy and dy's own gradient).
    assert kernel_calls.count('_forward_kernel') == 1 and kernel_calls.count('_grad_kernel') == 3

#----------------------------------------------------------------------------

@pytest.mark.parametrize('dtype', [torch.float16, torch.float32])
def test_triton_bias_act_keeps_dtype_and_computes_in_float32(dtype, triton_interpreter, kernel_calls):
    # StyleGAN2's layer epilogue (lrelu, sqrt(2), clamp 256) on a channels-last activation: computed in float32
    # and rounded once to x's dtype; the gradient likewise, zero where the output reached the clamp.
    gen = torch.Generator().manual_seed(32)
    x0 = (torch.randn([2, 6, 5, 3], generator=gen) * 200).to(dtype).contiguous(memory_format=torch.channels_last)
    b0 = torch.randn([6], generator=gen).to(dtype)
    dy = torch.randn(x0.shape, generator=gen).to(dtype).contiguous(memory_format=torch.channels_last)
    x = x0.clone().requires_grad_(True)
    y = bias_act.bias_act(x, b0, act='lrelu', clamp=256, impl='triton')
    (dx,) = torch.autograd.grad(y, [x], dy)
    x64 = x0.double().requires_grad_(True)
    ref = bias_act.bias_act(x64, b0.double(), act='lrelu', clamp=256)
    (dx_ref,) = torch.autograd.grad(ref, [x64], dy.double())
    assert y.dtype == dx.dtype == dtype and y.is_contiguous(memory_format=torch.channels_last)
    assert (ref.abs() == 256).any() and (ref.abs() < 256).any()
    rtol = torch.finfo(dtype).eps * (1 if dtype == torch.float16 else 2) # float16: half an ulp, plus float32 rounding
    assert torch.allclose(y.double(), ref, rtol=rtol, atol=0) and torch.allclose(dx.double(), dx_ref, rtol=rtol, atol=0)
    assert kernel_calls == ['_forward_kernel', '_grad_kernel']

#----------------------------------------------------------------------------

def test_triton_bias_act_leaves_other_activations_and_negative_gains_to_the_plain_path(triton_interpreter, kernel_calls):
    x, b = torch.randn([2, 3, 4]), torch.randn([3])
    for act, gain in [('tanh', None), ('swish', None), ('lrelu', -1.0)]:
        assert torch.equal(bias_act.bias_act(x, b, act=act, gain=gain, impl='triton'), bias_act.bias_act(x, b, act=act, gain=gain))
    assert kernel_calls == []

#----------------------------------------------------------------------------

def test_run_case_runs_a_tile_configuration_of_the_sweep(triton_interpreter):
    from torch_utils.ops import bias_act_triton
    for grad in (False, True):
        bias_act_triton.run_case([2, 4, 3, 3], torch.float16, 'lrelu', bias_act_triton.CANDIDATE_CONFIGS[0], grad=grad, device='cpu')()

#----------------------------------------------------------------------------
