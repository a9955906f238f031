"""Tests for torch_utils.ops.filtered_lrelu against the plain composition, at every StyleGAN3 layer configuration."""

import numpy as np
import pytest
import scipy.signal
import torch

from torch_utils.ops import filtered_lrelu
from torch_utils.ops import upfirdn2d
from tests import oracle_ops

#----------------------------------------------------------------------------

def _lowpass(taps):
    return None if taps == 1 else torch.as_tensor(scipy.signal.firwin(taps, cutoff=0.3), dtype=torch.float32)

def _radial(taps):
    r = np.hypot(*np.meshgrid(np.arange(taps) - (taps - 1) / 2, np.arange(taps) - (taps - 1) / 2))
    f = np.sinc(r / 3) * np.outer(np.kaiser(taps, 4), np.kaiser(taps, 4))
    return torch.as_tensor(f / f.sum(), dtype=torch.float32)

#----------------------------------------------------------------------------

# (input size, up, down, up taps, down filter, padding): the layer types of stylegan3-t and stylegan3-r.
_layers = {
    'T_same_rate':   (20, 2, 2, 12, _lowpass(12), [9, 8, 9, 8]),
    'T_up4':         (16, 4, 2, 24, _lowpass(12), [-6, -9, -6, -9]),
    'T_last':        (30, 2, 2, 12, _lowpass(12), [-11, -12, -11, -12]),
    'R_same_rate':   (10, 2, 2, 12, _radial(12), [11, 10, 11, 10]),
    'R_up4':         (14, 4, 2, 24, _radial(12), [-2, -5, -2, -5]),
    'R_last':        (28, 2, 2, 12, _lowpass(12), [-9, -10, -9, -10]),
    'torgb':         (9, 1, 1, 1, None, [0, 0, 0, 0]),
    'asymmetric':    (9, 2, 1, 12, _lowpass(1), [1, 2, 3, 4]),
    'down_only':     (12, 1, 2, 1, _lowpass(12), np.array([3, 2, 4, 1])),
}

@pytest.mark.parametrize('slope,clamp,flip_filter', [(0.2, None, False), (0.2, 0.3, True), (1, None, True), (1, 0.3, False)])
@pytest.mark.parametrize('layer', list(_layers))
def test_filtered_lrelu_matches_plain_composition(layer, slope, clamp, flip_filter):
    size, up, down, up_taps, fd, padding = _layers[layer]
    gen = torch.Generator().manual_seed(3)
    x = torch.randn([2, 3, size, size + 1], dtype=torch.float64, generator=gen)
    b = torch.randn([3], dtype=torch.float64, generator=gen)
    kwargs = dict(fu=_lowpass(up_taps), fd=fd, b=b, up=up, down=down, padding=padding, gain=1.3, slope=slope, clamp=clamp, flip_filter=flip_filter)
    y = filtered_lrelu.filtered_lrelu(x, **kwargs)
    ref = oracle_ops.filtered_lrelu_ref(x, **kwargs)
    assert y.shape == ref.shape and y.dtype == x.dtype and y.is_contiguous()
    assert torch.allclose(y, ref, rtol=1e-10, atol=1e-10)

#----------------------------------------------------------------------------

@pytest.mark.parametrize('layer', ['T_same_rate', 'T_up4', 'R_up4', 'R_last'])
def test_filtered_lrelu_gradients_and_r1_term_match_plain_composition(layer):
    size, up, down, up_taps, fd, padding = _layers[layer]
    gen = torch.Generator().manual_seed(4)
    x0 = torch.randn([2, 3, size, size], dtype=torch.float64, generator=gen)
    b0 = torch.randn([3], dtype=torch.float64, generator=gen)
    kwargs = dict(fu=_lowpass(up_taps), fd=fd, up=up, down=down, padding=padding, clamp=0.5)
    results = []
    for fn in (filtered_lrelu.filtered_lrelu, oracle_ops.filtered_lrelu_ref):
        x, b = x0.clone().requires_grad_(True), b0.clone().requires_grad_(True)
        y = fn(x, b=b, **kwargs)
        gx, gb = torch.autograd.grad((y * y.detach().cos()).sum(), [x, b], create_graph=True)
        penalty = gx.square().sum() + gb.square().sum()
        r1x, r1b = torch.autograd.grad(penalty, [x, b], allow_unused=True) if penalty.requires_grad else (None, None)
        results.append([gx, gb, r1x, r1b])
    (gx, gb, r1x, r1b), ref = results
    assert torch.allclose(gx, ref[0], rtol=1e-9, atol=1e-9) and torch.allclose(gb, ref[1], rtol=1e-9, atol=1e-9)
    # The first-order gradients depend on x and b only through the activation's kinks: the second-order
    # terms are structurally absent (None, as from the upstream's kernels); the composition computes zeros.
    assert r1x is None and r1b is None and not ref[2].any() and not ref[3].any()

#----------------------------------------------------------------------------

@pytest.mark.parametrize('formulation', ['plain', 'cuda'])
def test_filtered_lrelu_gradcheck_and_gradgradcheck_wrt_x_and_b(formulation, request):
    if formulation == 'cuda':
        request.getfixturevalue('cuda_formulation')
    gen = torch.Generator().manual_seed(5)
    x = torch.randn([1, 2, 6, 7], dtype=torch.float64, generator=gen, requires_grad=True)
    b = torch.randn([2], dtype=torch.float64, generator=gen, requires_grad=True)
    for fu, fd, up, down, padding in [(_lowpass(8), _lowpass(8), 2, 2, [5, 4, 5, 4]), (_lowpass(12), _radial(4), 4, 2, [-3, -2, -1, -4])]:
        fn = lambda x, b: filtered_lrelu.filtered_lrelu(x, fu, fd, b, up=up, down=down, padding=padding, clamp=0.8)
        assert torch.autograd.gradcheck(fn, [x, b], fast_mode=True)
        assert torch.autograd.gradgradcheck(fn, [x, b], fast_mode=True)

#----------------------------------------------------------------------------

@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_filtered_lrelu_half_precision_close_to_float32_and_keeps_dtype(dtype):
    size, up, down, up_taps, fd, padding = _layers['T_up4']
    x = torch.randn([2, 4, size, size])
    b = torch.randn([4])
    kwargs = dict(fu=_lowpass(up_taps), fd=fd, up=up, down=down, padding=padding, clamp=2.0)
    ref = filtered_lrelu.filtered_lrelu(x, b=b, **kwargs)
    y = filtered_lrelu.filtered_lrelu(x.to(dtype), b=b.to(dtype), **kwargs)
    assert y.dtype == dtype
    assert torch.allclose(y.float(), ref, atol=0.06, rtol=0.02)

#----------------------------------------------------------------------------

def test_filtered_lrelu_keeps_channels_last_layout():
    size, up, down, up_taps, fd, padding = _layers['T_same_rate']
    x = torch.randn([2, 8, size, size])
    kwargs = dict(fu=_lowpass(up_taps), fd=fd, up=up, down=down, padding=padding)
    y = filtered_lrelu.filtered_lrelu(x.contiguous(memory_format=torch.channels_last), **kwargs)
    assert y.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(y, filtered_lrelu.filtered_lrelu(x, **kwargs), atol=1e-5)

#----------------------------------------------------------------------------

def test_filtered_lrelu_rejects_bad_arguments():
    x = torch.zeros([1, 2, 8, 8])
    with pytest.raises(ValueError):
        filtered_lrelu.filtered_lrelu(x, up=0)
    with pytest.raises(ValueError):
        filtered_lrelu.filtered_lrelu(x, b=torch.zeros([3]))
    with pytest.raises(ValueError):
        filtered_lrelu.filtered_lrelu(x, gain=0)
    with pytest.raises(ValueError):
        filtered_lrelu.filtered_lrelu(x, padding=[1, 2, 3])

#----------------------------------------------------------------------------

#----------------------------------------------------------------------------
# The CUDA formulation (banded matrix products, a one-byte code for the backward), run on CPU.

def _values_and_gradients(fn, x0, b0, **kwargs):
    x, b = x0.clone().requires_grad_(True), b0.clone().requires_grad_(True)
    y = fn(x, b=b, **kwargs)
    dy = torch.linspace(-1, 1, y.numel(), dtype=y.dtype).reshape(y.shape)
    return [y, *torch.autograd.grad(y, [x, b], dy)]

@pytest.mark.parametrize('slope,clamp,flip_filter', [(0.2, None, False), (0.2, 0.3, True), (1, 0.3, False)])
@pytest.mark.parametrize('layer', list(_layers))
def test_cuda_formulation_matches_plain_composition_with_gradients(layer, slope, clamp, flip_filter, cuda_formulation):
    size, up, down, up_taps, fd, padding = _layers[layer]
    gen = torch.Generator().manual_seed(16)
    x = torch.randn([2, 3, size, size + 1], dtype=torch.float64, generator=gen)
    b = torch.randn([3], dtype=torch.float64, generator=gen)
    kwargs = dict(fu=_lowpass(up_taps), fd=fd, up=up, down=down, padding=padding, gain=1.3, slope=slope, clamp=clamp, flip_filter=flip_filter)
    ours = _values_and_gradients(filtered_lrelu.filtered_lrelu, x, b, **kwargs)
    ref = _values_and_gradients(oracle_ops.filtered_lrelu_ref, x, b, **kwargs)
    assert ours[0].shape == ref[0].shape and ours[0].is_contiguous()
    for a, r in zip(ours, ref):
        assert torch.allclose(a, r, rtol=1e-6, atol=1e-6) # 1e-6: the rank-1 split of a float32 filter

@pytest.mark.parametrize('layer', ['T_up4', 'R_same_rate', 'T_last'])
def test_cuda_formulation_half_precision_close_to_float32_oracle(layer, cuda_formulation):
    size, up, down, up_taps, fd, padding = _layers[layer]
    gen = torch.Generator().manual_seed(18)
    x = torch.randn([2, 4, size, size], generator=gen).half()
    b = torch.randn([4], generator=gen).half()
    kwargs = dict(fu=_lowpass(up_taps), fd=fd, up=up, down=down, padding=padding, clamp=2.0)
    y, dx, db = _values_and_gradients(filtered_lrelu.filtered_lrelu, x, b, **kwargs)
    ref = _values_and_gradients(oracle_ops.filtered_lrelu_ref, x.float(), b.float(), **kwargs)
    assert y.dtype == dx.dtype == db.dtype == torch.float16
    for a, r in zip([y, dx, db], ref):
        assert torch.allclose(a.float(), r, atol=0.02 * r.abs().max().item(), rtol=0.02)

#----------------------------------------------------------------------------

def test_cuda_formulation_keeps_a_one_byte_code_instead_of_the_upsampled_activation(cuda_formulation):
    size, up, down, up_taps, fd, padding = _layers['T_up4']
    x = torch.randn([2, 4, size, size], requires_grad=True)
    y = filtered_lrelu.filtered_lrelu(x, _lowpass(up_taps), fd, up=up, down=down, padding=padding, clamp=0.5)
    saved = []
    node = y.grad_fn
    while node is not None: # Walk to the activation's node: upfirdn2d (down) <- lrelu/clamp.
        saved += [t for t in getattr(node, 'saved_tensors', ()) if t is not None and t.numel() > x.numel()]
        code = getattr(node, 'code', None)
        node = node.next_functions[0][0] if node.next_functions else None
        if code is not None:
            break
    assert code is not None and code.dtype == torch.uint8 and code.numel() > 2 * x.numel() and not saved
    assert set(code.unique().tolist()) == {0, 1, 2}

def test_cuda_formulation_makes_no_derivative_code_without_a_backward(cuda_formulation, monkeypatch):
    # Inference (no_grad, or nothing requiring grad) must not pay the code's passes over the upsampled tensor.
    size, up, down, up_taps, fd, padding = _layers['T_up4']
    x = torch.randn([2, 4, size, size])
    kwargs = dict(fu=_lowpass(up_taps), fd=fd, up=up, down=down, padding=padding, clamp=0.5)
    expected = filtered_lrelu.filtered_lrelu(x, **kwargs)
    def refuse(*args):
        raise AssertionError('derivative code made')
    monkeypatch.setattr(filtered_lrelu, '_derivative_code', refuse)
    with torch.no_grad():
        assert torch.equal(filtered_lrelu.filtered_lrelu(x.requires_grad_(True), **kwargs), expected)
    assert torch.equal(filtered_lrelu.filtered_lrelu(x.detach(), **kwargs), expected)

#----------------------------------------------------------------------------

@pytest.mark.parametrize('layer', ['T_same_rate', 'T_up4', 'T_last', 'down_only'])
def test_cuda_formulation_of_separable_filters_runs_no_convolution(layer, cuda_formulation, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError('convolution called')
    monkeypatch.setattr(torch.nn.functional, 'conv2d', refuse)
    monkeypatch.setattr(torch.nn.functional, 'conv_transpose2d', refuse)
    size, up, down, up_taps, fd, padding = _layers[layer]
    x = torch.randn([2, 3, size, size], requires_grad=True)
    b = torch.zeros([3], requires_grad=True)
    p = torch.ones([], requires_grad=True)
    y = filtered_lrelu.filtered_lrelu(x, _lowpass(up_taps), fd, b, up=up, down=down, padding=padding, clamp=0.5) * p
    gx, gb = torch.autograd.grad(y.square().sum(), [x, b], create_graph=True) # As in path-length regularisation.
    (gx.square().sum() + gb.square().sum()).backward()
    assert p.grad is not None

#----------------------------------------------------------------------------

@pytest.mark.parametrize('impl', ['cuda', 'ref'])
def test_every_impl_value_matches_the_oracle(impl, cuda_formulation):
    """impl='cuda' runs the banded-matrix formulation (forced on CPU here), impl='ref' the plain one: both equal the oracle."""
    from torch_utils.ops import bias_act, upfirdn2d
    gen = torch.Generator().manual_seed(5)
    x = torch.randn([2, 3, 10, 10], dtype=torch.float64, generator=gen)
    b = torch.randn([3], dtype=torch.float64, generator=gen)
    f = _lowpass(12)
    kwargs = dict(up=2, down=2, padding=[9, 8, 9, 8])
    assert torch.allclose(filtered_lrelu.filtered_lrelu(x, f, f, b, impl=impl, **kwargs), oracle_ops.filtered_lrelu_ref(x, f, f, b, **kwargs), rtol=1e-6, atol=1e-6)
    kwargs = dict(up=2, padding=[6, 5, 6, 5], gain=4)
    assert torch.allclose(upfirdn2d.upfirdn2d(x, f, impl=impl, **kwargs), oracle_ops.upfirdn2d_ref(x, f, **kwargs), rtol=1e-6, atol=1e-6)
    assert torch.allclose(bias_act.bias_act(x, b, act='lrelu', clamp=1, impl=impl), oracle_ops.bias_act_ref(x, b, act='lrelu', clamp=1), rtol=1e-12, atol=1e-12)
