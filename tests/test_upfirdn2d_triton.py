"""Tests for torch_utils.ops.upfirdn2d_triton, run on CPU through Triton's interpreter: upfirdn2d(impl='triton')
against the oracle (values, first and second order, dtypes, layouts), and a StyleGAN2 discriminator with
STYLESV_OPS=triton against the plain path (logits, R1 and its parameter gradients)."""

import numpy as np
import pytest
import torch

from torch_utils.ops import upfirdn2d
from training import networks_stylegan2
from tests import oracle_ops
from tests.test_networks_stylegan2 import logits_r1_and_gradients

#----------------------------------------------------------------------------

@pytest.fixture
def triton_only(monkeypatch):
    """Fail on any upfirdn2d pass that is not a Triton kernel; count the kernel passes."""
    from torch_utils.ops import upfirdn2d_triton
    def refuse(*args, **kwargs):
        raise AssertionError('upfirdn2d fell back to another formulation')
    monkeypatch.setattr(upfirdn2d, '_upfirdn2d', refuse)
    monkeypatch.setattr(upfirdn2d, '_upfirdn2d_matmul', refuse)
    calls, fir_pass = [], upfirdn2d_triton.fir_pass
    monkeypatch.setattr(upfirdn2d_triton, 'fir_pass', lambda *args, **kwargs: calls.append(1) or fir_pass(*args, **kwargs))
    return calls

#----------------------------------------------------------------------------

_filters = { # name: function of a generator -> filter
    'sg2_4x4':   lambda g: upfirdn2d.setup_filter([1, 3, 3, 1]),
    'sep4':      lambda g: torch.randn([4], generator=g),
    'sep12':     lambda g: torch.randn([12], generator=g),
    'rank1_3x5': lambda g: torch.outer(torch.rand([3], generator=g) + 0.5, torch.randn([5], generator=g)),
    'rank2_3x2': lambda g: torch.randn([3, 2], generator=g),
    'tap1':      lambda g: torch.randn([1], generator=g),
    'none':      lambda g: None,
}

_cases = [
    # filter, up, down, padding (x0, x1, y0, y1), flip_filter, kernel passes per upfirdn2d call
    ('sg2_4x4', 1, 2, [1, 1, 1, 1], False, 1),          # the discriminator's downsample2d
    ('sg2_4x4', 2, 1, [2, 1, 2, 1], True, 1),           # upsample2d
    ('sep4', 4, 4, [3, -1, 0, 2], True, 1),
    ('sep12', [2, 1], [1, 4], [6, 5, 5, 6], False, 2),  # 36 taps per output: two 1-D passes
    ('rank1_3x5', [4, 1], [2, 4], [-1, 3, 2, -2], True, 1),
    ('rank2_3x2', 3, 2, [1, 0, 2, 1], False, 1),
    ('tap1', 1, 1, [2, -3, -1, 1], True, 1),
    ('none', 2, 2, [0, 1, 1, 0], False, 1),
]

@pytest.mark.parametrize('name,up,down,padding,flip_filter,passes', _cases)
def test_triton_upfirdn2d_matches_oracle_to_second_order(name, up, down, padding, flip_filter, passes, triton_interpreter, triton_only):
    gen = torch.Generator().manual_seed(21)
    f = _filters[name](gen)
    x0 = torch.randn([2, 3, 7, 9], dtype=torch.float64, generator=gen)
    kwargs = dict(up=up, down=down, padding=padding, flip_filter=flip_filter, gain=1.7)
    w = torch.randn(oracle_ops.upfirdn2d_ref(x0, f, **kwargs).shape, dtype=torch.float64, generator=gen)
    results = []
    for fn in (lambda x: upfirdn2d.upfirdn2d(x, f, impl='triton', **kwargs), lambda x: oracle_ops.upfirdn2d_ref(x, f, **kwargs)):
        x = x0.clone().requires_grad_(True)
        y = fn(x)
        (dx,) = torch.autograd.grad((y.square() * w).sum(), [x], create_graph=True) # The adjoint, applied to 2 y w.
        (ddx,) = torch.autograd.grad(dx.square().sum(), [x])                        # Back through the adjoint (R1).
        results.append([y, dx, ddx])
    for ours, ref in zip(*results):
        assert ours.shape == ref.shape and torch.allclose(ours, ref, rtol=1e-10, atol=1e-10)
    assert len(triton_only) == 4 * passes # forward, adjoint; then the adjoint's adjoint and the forward's adjoint

#----------------------------------------------------------------------------

@pytest.mark.parametrize('dtype', [torch.float16, torch.float32])
@pytest.mark.parametrize('layout', [torch.contiguous_format, torch.channels_last])
def test_triton_upfirdn2d_keeps_dtype_and_layout_and_accumulates_in_float32(dtype, layout, triton_interpreter, triton_only):
    gen = torch.Generator().manual_seed(22)
    f = upfirdn2d.setup_filter([1, 3, 3, 1])
    x0 = torch.randn([2, 5, 11, 9], generator=gen).to(dtype)
    x = x0.contiguous(memory_format=layout).requires_grad_(True)
    y = upfirdn2d.downsample2d(x, f, impl='triton')
    dy = torch.randn(y.shape, generator=gen).to(dtype)
    (dx,) = torch.autograd.grad(y, [x], dy.contiguous(memory_format=layout)) # The adjoint keeps dy's layout.
    x64 = x0.double().requires_grad_(True)
    ref = oracle_ops.upfirdn2d_ref(x64, f, down=2, padding=1)
    (dx_ref,) = torch.autograd.grad(ref, [x64], dy.double())
    assert y.dtype == dx.dtype == dtype and y.is_contiguous(memory_format=layout) and dx.is_contiguous(memory_format=layout)
    eps = torch.finfo(dtype).eps * (1 if dtype == torch.float16 else 16) # float16: one rounding of a float32 sum
    assert (y.double() - ref).abs().max() <= eps * ref.abs().max() and (dx.double() - dx_ref).abs().max() <= eps * dx_ref.abs().max()

#----------------------------------------------------------------------------

def test_run_case_runs_a_tile_configuration_of_the_sweep(triton_interpreter):
    from torch_utils.ops import upfirdn2d_triton
    taps = np.outer([1, 3, 3, 1], [1, 3, 3, 1]) / 64
    config = upfirdn2d_triton.CANDIDATE_CONFIGS[0]
    run = upfirdn2d_triton.run_case(1, 3, 9, 8, taps, (1, 1), (2, 2), (1, 1, 1, 1), torch.float32, True, config, device='cpu')
    y = run()
    assert y.shape == (1, 3, 4, 4) and y.is_contiguous(memory_format=torch.channels_last)
    assert config != upfirdn2d_triton.DEFAULT_CONFIG and 'BLOCK' in config and 'num_warps' in config

#----------------------------------------------------------------------------

def test_discriminator_with_triton_ops_matches_plain_path_with_r1(monkeypatch, triton_interpreter):
    # A residual StyleGAN2 discriminator (4x4 filter at down 2, lrelu, clamp) with STYLESV_OPS=triton against
    # the plain path: logits, the R1 gradient (double backward) and every parameter's gradient.
    from torch_utils.ops import upfirdn2d_triton, bias_act_triton
    torch.manual_seed(0)
    D = networks_stylegan2.Discriminator(c_dim=0, img_resolution=8, img_channels=3, channel_base=32, channel_max=8,
        conv_clamp=0.5, epilogue_kwargs=dict(mbstd_group_size=2))
    img0 = torch.randn([2, 3, 8, 8])
    calls = []
    monkeypatch.setattr(upfirdn2d_triton, 'fir_pass', lambda *a, fn=upfirdn2d_triton.fir_pass: calls.append('fir') or fn(*a))
    monkeypatch.setattr(bias_act_triton, 'bias_act', lambda *a, fn=bias_act_triton.bias_act: calls.append('act') or fn(*a))
    results = []
    for ops in ('', 'triton'):
        monkeypatch.setenv('STYLESV_OPS', ops)
        results.append(logits_r1_and_gradients(D, img0))
    assert calls.count('fir') >= 2 * 3 and calls.count('act') == 6 # Two downsamplings, each in the forward, backward and double
                                                                   # backward; the six layers with a bias_act.
    for a, b in zip(*results):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-5 * b.abs().max().item()) # float32 rounding

#----------------------------------------------------------------------------
