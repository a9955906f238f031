"""Tests for torch_utils.ops.upfirdn2d: against scipy.signal.upfirdn, gradients, dtypes, layouts."""

import numpy as np
import pytest
import scipy.signal
import torch

from torch_utils.ops import upfirdn2d
from tests import oracle_ops

#----------------------------------------------------------------------------

def scipy_upfirdn2d(x, f, up, down, padding, flip_filter, gain):
    """Independent model of one channel: scipy zero insertion + full convolution, then shift/pad/decimate."""
    (upx, upy), (downx, downy) = up, down
    px0, px1, py0, py1 = padding
    H, W = x.shape
    if flip_filter:
        f = f[::-1] if f.ndim == 1 else f[::-1, ::-1]
    if f.ndim == 1:
        full = scipy.signal.upfirdn(f * gain ** 0.5, x, up=upx, axis=1)
        full = scipy.signal.upfirdn(f * gain ** 0.5, full, up=upy, axis=0)
        fh = fw = f.shape[0]
    else:
        stuffed = scipy.signal.upfirdn([1], scipy.signal.upfirdn([1], x, up=upx, axis=1), up=upy, axis=0)
        full = scipy.signal.convolve2d(stuffed, f * gain)
        fh, fw = f.shape
    # Output sample j (before decimation) is full-convolution sample j + f - 1 - pad0; zero outside.
    out_h, out_w = H * upy + py0 + py1 - fh + 1, W * upx + px0 + px1 - fw + 1
    out = np.zeros([out_h, out_w])
    for j in range(out_h):
        for i in range(out_w):
            m, n = j + fh - 1 - py0, i + fw - 1 - px0
            if 0 <= m < full.shape[0] and 0 <= n < full.shape[1]:
                out[j, i] = full[m, n]
    return out[::downy, ::downx]

#----------------------------------------------------------------------------

_cases = [
    # filter shape, up, down, padding
    ([12], 2, 1, [6, 5, 6, 5]),
    ([12], 1, 2, [5, 5, 5, 5]),
    ([24], 4, 1, [-6, -9, -6, -9]),
    ([4], [2, 3], [1, 2], [1, 2, 3, 4]),
    ([4, 4], 2, 1, [2, 1, 2, 1]),
    ([3, 5], 1, [2, 3], [-1, 3, 2, -2]),
    ([5, 3], 3, 2, [0, 4, 4, 0]),
    ([1], 1, 1, [2, -3, -1, 1]),
]

@pytest.mark.parametrize('impl', ['project', 'oracle'])
@pytest.mark.parametrize('flip_filter', [False, True])
@pytest.mark.parametrize('fshape,up,down,padding', _cases)
def test_upfirdn2d_matches_scipy_upfirdn_per_channel(fshape, up, down, padding, flip_filter, impl):
    gen = torch.Generator().manual_seed(1)
    x = torch.randn([2, 3, 10, 11], dtype=torch.float64, generator=gen)
    f = torch.randn(fshape, generator=gen)
    fn = upfirdn2d.upfirdn2d if impl == 'project' else oracle_ops.upfirdn2d_ref
    y = fn(x, f, up=up, down=down, padding=padding, flip_filter=flip_filter, gain=1.7)
    up2, down2 = upfirdn2d._parse_scaling(up), upfirdn2d._parse_scaling(down)
    for n in range(2):
        for c in range(3):
            ref = scipy_upfirdn2d(x[n, c].numpy(), f.double().numpy(), up2, down2, padding, flip_filter, 1.7)
            assert y.shape[2:] == ref.shape
            np.testing.assert_allclose(y[n, c].numpy(), ref, rtol=1e-10, atol=1e-10)

#----------------------------------------------------------------------------

def test_setup_filter_normalizes_and_chooses_separable_form():
    f = upfirdn2d.setup_filter([1, 3, 3, 1])
    assert f.shape == (4, 4) and f.dtype == torch.float32
    assert torch.allclose(f.sum(), torch.tensor(1.0))
    g = upfirdn2d.setup_filter(np.arange(1, 13), gain=4)
    assert g.shape == (12,) and torch.allclose(g.sum(), torch.tensor(2.0))  # gain ** (ndim / 2) per pass
    assert upfirdn2d.setup_filter(None).shape == (1, 1)
    assert torch.equal(upfirdn2d.setup_filter([1, 2, 3], flip_filter=True, normalize=False, separable=True), torch.tensor([3.0, 2, 1]))
    with pytest.raises(ValueError):
        upfirdn2d.setup_filter(np.ones([2, 2, 2]))

#----------------------------------------------------------------------------

def test_resampling_helpers_keep_size_and_dc_gain():
    x = torch.ones([1, 2, 32, 32])
    for f, up_ripple in [(upfirdn2d.setup_filter([1, 3, 3, 1]), 1e-5), (upfirdn2d.setup_filter(scipy.signal.firwin(12, 0.25)), 0.03)]:
        up = upfirdn2d.upsample2d(x, f)
        down = upfirdn2d.downsample2d(x, f)
        same = upfirdn2d.filter2d(x, f)
        assert up.shape == (1, 2, 64, 64) and down.shape == (1, 2, 16, 16) and same.shape == x.shape
        assert torch.allclose(up[:, :, 12:-12, 12:-12], torch.ones([]), atol=up_ripple)  # polyphase ripple of the filter
        assert torch.allclose(down[:, :, 6:-6, 6:-6], torch.ones([]), atol=1e-5)
        assert torch.allclose(same[:, :, 6:-6, 6:-6], torch.ones([]), atol=1e-5)

#----------------------------------------------------------------------------

def test_upfirdn2d_first_and_second_derivatives():
    gen = torch.Generator().manual_seed(2)
    f1, f2 = torch.randn([8], generator=gen), torch.randn([3, 2], generator=gen)
    x = torch.randn([1, 2, 5, 6], dtype=torch.float64, generator=gen, requires_grad=True)
    for f, up, down, pad in [(f1, 2, 1, [3, 4, 4, 3]), (f1, 1, 2, [-1, 3, 2, 2]), (f2, 3, 2, [1, 0, 2, 1]), (None, 1, 1, [-1, 2, 0, -2])]:
        fn = lambda x: upfirdn2d.upfirdn2d(x, f, up=up, down=down, padding=pad, gain=2)
        assert torch.autograd.gradcheck(fn, [x], fast_mode=True)
        assert torch.autograd.gradgradcheck(fn, [x], fast_mode=True)

def test_second_order_gradients_cost_a_few_convolutions_not_one_per_channel():
    # PyTorch's double backward of a grouped convolution also computes a gradient for its (fixed) filter,
    # with one convolution per channel; upfirdn2d's gradients are upfirdn2d passes of a few convolutions.
    x = torch.randn([2, 32, 16, 16], requires_grad=True)
    f = upfirdn2d.setup_filter([1, 3, 3, 1])
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        y = upfirdn2d.downsample2d(upfirdn2d.upsample2d(x, f), f)
        (g,) = torch.autograd.grad(y.square().sum(), [x], create_graph=True) # As in an R1 penalty.
        g.square().sum().backward()
    assert sum(e.count for e in prof.key_averages() if e.key == 'aten::convolution') <= 12

#----------------------------------------------------------------------------

@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_upfirdn2d_half_precision_close_to_float32_and_keeps_dtype(dtype):
    x = torch.randn([2, 3, 12, 12])
    f = upfirdn2d.setup_filter(scipy.signal.firwin(12, 0.25))
    ref = upfirdn2d.upsample2d(x, f)
    y = upfirdn2d.upsample2d(x.to(dtype), f)
    assert y.dtype == dtype
    assert torch.allclose(y.float(), ref, atol=0.05, rtol=0.02)

#----------------------------------------------------------------------------

def test_upfirdn2d_keeps_memory_layout_of_input():
    x = torch.randn([2, 8, 10, 10])
    f = upfirdn2d.setup_filter([1, 3, 3, 1])
    assert upfirdn2d.upsample2d(x, f).is_contiguous()
    y = upfirdn2d.upsample2d(x.contiguous(memory_format=torch.channels_last), f)
    assert y.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(y, upfirdn2d.upsample2d(x, f), atol=1e-6)

#----------------------------------------------------------------------------

def test_upfirdn2d_rejects_bad_arguments():
    x = torch.zeros([1, 1, 4, 4])
    with pytest.raises(ValueError):
        upfirdn2d.upfirdn2d(x, torch.ones([3]), up=0)
    with pytest.raises(ValueError):
        upfirdn2d.upfirdn2d(x, torch.ones([3]), padding=[1, 2, 3])
    with pytest.raises(ValueError):
        upfirdn2d.upfirdn2d(x, torch.ones([3], dtype=torch.float64))
    with pytest.raises(ValueError):
        upfirdn2d.upfirdn2d(x[0], torch.ones([3]))

#----------------------------------------------------------------------------

def test_oracle_ops_routes_public_ops_and_resampling_helpers_through_oracle(monkeypatch):
    calls, oracle = [], oracle_ops.upfirdn2d_ref
    def spy(*args, **kwargs):
        calls.append(1)
        return oracle(*args, **kwargs)
    monkeypatch.setattr(oracle_ops, 'upfirdn2d_ref', spy)
    from torch_utils.ops import filtered_lrelu, bias_act
    project_up, project_flrelu, project_bias_act = upfirdn2d.upfirdn2d, filtered_lrelu.filtered_lrelu, bias_act.bias_act
    x = torch.randn([1, 2, 8, 8])
    f = upfirdn2d.setup_filter([1, 3, 3, 1])
    with oracle_ops.oracle_ops():
        assert filtered_lrelu.filtered_lrelu is oracle_ops.filtered_lrelu_ref and bias_act.bias_act is oracle_ops.bias_act_ref
        y = upfirdn2d.upsample2d(x, f)
        upfirdn2d.downsample2d(x, f)
        upfirdn2d.filter2d(x, f)
    assert len(calls) == 3
    assert upfirdn2d.upfirdn2d is project_up and filtered_lrelu.filtered_lrelu is project_flrelu and bias_act.bias_act is project_bias_act
    assert torch.allclose(y, upfirdn2d.upsample2d(x, f), atol=1e-5)

#----------------------------------------------------------------------------

# The CUDA formulation: one banded matrix product per axis, run on CPU (tests/conftest.py).

def _radial2d(taps):
    r = np.hypot(*np.meshgrid(np.arange(taps) - (taps - 1) / 2, np.arange(taps) - (taps - 1) / 2))
    return torch.as_tensor(np.sinc(r / 2) / np.sinc(r / 2).sum(), dtype=torch.float32)

_filters = { # name: function of a generator -> filter
    'sep4':      lambda g: torch.randn([4], generator=g),
    'sep12':     lambda g: torch.randn([12], generator=g),
    'sep24':     lambda g: torch.randn([24], generator=g),
    'sg2_4x4':   lambda g: upfirdn2d.setup_filter([1, 3, 3, 1]),
    'rank1_3x5': lambda g: torch.outer(torch.rand([3], generator=g) + 0.5, torch.randn([5], generator=g)),
    'radial_6':  lambda g: _radial2d(6),
    'none':      lambda g: None,
    'tap1':      lambda g: torch.randn([1], generator=g),
}

_matmul_cases = [
    # filter, up, down, padding
    ('sep12', 2, 1, [6, 5, 6, 5]),
    ('sep12', 1, 2, [5, 5, 5, 5]),
    ('sep12', 1, 4, [-2, 7, 3, 1]),
    ('sep24', 4, 1, [-1, -2, -3, 0]),
    ('sep4', [2, 3], [1, 2], [1, 2, 3, 4]),
    ('sg2_4x4', 2, 1, [2, 1, 2, 1]),
    ('sg2_4x4', 1, 2, [1, 1, 1, 1]),
    ('rank1_3x5', [4, 1], [2, 4], [-1, 3, 2, -2]),
    ('radial_6', 4, 2, [3, -1, 0, 2]),
    ('none', 2, 2, [0, 1, 1, 0]),
    ('tap1', 1, 1, [2, -3, -1, 1]),
]

@pytest.mark.parametrize('flip_filter', [False, True])
@pytest.mark.parametrize('name,up,down,padding', _matmul_cases)
def test_cuda_formulation_matches_oracle_with_first_and_second_derivatives(name, up, down, padding, flip_filter, cuda_formulation):
    gen = torch.Generator().manual_seed(13)
    f = _filters[name](gen)
    x = torch.randn([2, 3, 9, 11], dtype=torch.float64, generator=gen, requires_grad=True)
    kwargs = dict(up=up, down=down, padding=padding, flip_filter=flip_filter, gain=1.7)
    y = upfirdn2d.upfirdn2d(x, f, **kwargs)
    ref = oracle_ops.upfirdn2d_ref(x, f, **kwargs)
    dy = torch.randn(ref.shape, dtype=torch.float64, generator=gen)
    (dx,), (dx_ref,) = torch.autograd.grad(y, [x], dy), torch.autograd.grad(ref, [x], dy)
    assert y.shape == ref.shape and y.is_contiguous()
    assert torch.allclose(y, ref, rtol=1e-6, atol=1e-6) and torch.allclose(dx, dx_ref, rtol=1e-6, atol=1e-6) # rank-1 split of a float32 filter
    small = x.detach()[:1, :2, :8, :9].clone().requires_grad_(True)
    fn = lambda x: upfirdn2d.upfirdn2d(x, f, **kwargs)
    assert torch.autograd.gradcheck(fn, [small], fast_mode=True)
    assert torch.autograd.gradgradcheck(fn, [small], fast_mode=True) # The backward is differentiable w.r.t. its input.

@pytest.mark.parametrize('name,up,down,padding', [('sg2_4x4', 2, 1, [2, 1, 2, 1]), ('sep12', 1, 2, [5, 5, 5, 5]), ('sep24', 4, 1, [-6, -9, -6, -9])])
def test_cuda_formulation_keeps_channels_last_and_half_precision(name, up, down, padding, cuda_formulation):
    gen = torch.Generator().manual_seed(14)
    f = _filters[name](gen)
    f = f / f.sum()
    x = torch.randn([2, 8, 11, 10], generator=gen).half()
    dy = torch.randn(oracle_ops.upfirdn2d_ref(x.float(), f, up=up, down=down, padding=padding).shape, generator=gen)
    for layout in [torch.contiguous_format, torch.channels_last]:
        x16 = x.contiguous(memory_format=layout).requires_grad_(True)
        x32 = x.float().requires_grad_(True)
        y = upfirdn2d.upfirdn2d(x16, f, up=up, down=down, padding=padding, gain=2)
        ref = oracle_ops.upfirdn2d_ref(x32, f, up=up, down=down, padding=padding, gain=2)
        (dx,), (dx_ref,) = torch.autograd.grad(y, [x16], dy.half()), torch.autograd.grad(ref, [x32], dy)
        assert y.dtype == torch.float16 and dx.dtype == torch.float16 and y.is_contiguous(memory_format=layout)
        assert torch.allclose(y.float(), ref, atol=0.02, rtol=0.01) and torch.allclose(dx.float(), dx_ref, atol=0.05, rtol=0.01)

@pytest.mark.parametrize('layout', [torch.contiguous_format, torch.channels_last])
def test_cuda_formulation_returns_the_product_without_copying_it(layout, cuda_formulation):
    # The last product must land in a tensor of its own, in x's layout: no full-size copy after it.
    x = torch.randn([2, 8, 12, 10]).contiguous(memory_format=layout)
    f = upfirdn2d.setup_filter(torch.ones([12]))
    upfirdn2d.upsample2d(x, f) # Builds the cached band matrices.
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        y = upfirdn2d.upsample2d(x, f)
    assert y.is_contiguous(memory_format=layout) and not y._is_view()
    assert not [e.name for e in prof.events() if e.name in ('aten::copy_', 'aten::clone', 'aten::contiguous')]

#----------------------------------------------------------------------------

@pytest.mark.parametrize('name,up,down', [('sep12', 2, 1), ('sep12', 1, 2), ('sg2_4x4', 2, 1), ('sg2_4x4', 1, 2), ('none', 2, 1), ('rank1_3x5', 1, 1)])
def test_cuda_formulation_of_separable_filters_runs_no_convolution(name, up, down, cuda_formulation, monkeypatch):
    # The promise of the CUDA path: no FIR filtering through cuDNN's depthwise or transposed convolutions,
    # in the forward, the backward or the double backward (R1, path length).
    def refuse(*args, **kwargs):
        raise AssertionError('convolution called')
    monkeypatch.setattr(torch.nn.functional, 'conv2d', refuse)
    monkeypatch.setattr(torch.nn.functional, 'conv_transpose2d', refuse)
    gen = torch.Generator().manual_seed(15)
    f = _filters[name](gen)
    x = torch.randn([2, 3, 8, 8], generator=gen, requires_grad=True)
    p = torch.ones([], requires_grad=True)
    y = upfirdn2d.upfirdn2d(x, f, up=up, down=down, padding=1) * p
    (dx,) = torch.autograd.grad(y.square().sum(), [x], create_graph=True)
    dx.square().sum().backward()
    assert p.grad is not None and x.grad is not None

#----------------------------------------------------------------------------

def test_cuda_formulation_decides_separability_once_per_filter_and_sees_in_place_changes(cuda_formulation, monkeypatch):
    calls, factors = [], upfirdn2d._separable_factors
    monkeypatch.setattr(upfirdn2d, '_separable_factors', lambda f: calls.append(1) or factors(f))
    f = upfirdn2d.setup_filter([1, 3, 3, 1])
    x = torch.randn([1, 2, 8, 8])
    y = upfirdn2d.upsample2d(x, f)
    y.sum().backward() if y.requires_grad else None
    assert torch.equal(upfirdn2d.upsample2d(x, f), y) and len(calls) == 1 # one host sync per filter, not per call
    with torch.no_grad():
        f.mul_(2)  # e.g. G_ema's buffers copied from G's
    assert torch.allclose(upfirdn2d.upsample2d(x, f), 2 * y) and len(calls) == 2

#----------------------------------------------------------------------------
