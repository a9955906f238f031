"""Tests for conv2d_gradfix, conv2d_resample (fast paths vs generic path), fma and grid_sample_gradfix."""

import pytest
import torch
import torch.nn.functional as F

from torch_utils.ops import conv2d_gradfix, conv2d_resample, fma, grid_sample_gradfix, upfirdn2d
from tests import oracle_ops

#----------------------------------------------------------------------------

def test_conv2d_gradfix_is_identical_to_torch_functional():
    gen = torch.Generator().manual_seed(8)
    x = torch.randn([2, 4, 9, 9], generator=gen)
    w = torch.randn([6, 2, 3, 3], generator=gen)
    b = torch.randn([6], generator=gen)
    assert torch.equal(conv2d_gradfix.conv2d(x, w, b, stride=2, padding=1, groups=2), F.conv2d(x, w, b, stride=2, padding=1, groups=2))
    wt = torch.randn([4, 3, 3, 3], generator=gen)
    assert torch.equal(conv2d_gradfix.conv_transpose2d(x, wt, None, stride=2, padding=1, output_padding=1, groups=2),
                       F.conv_transpose2d(x, wt, None, stride=2, padding=1, output_padding=1, groups=2))

#----------------------------------------------------------------------------

def test_no_weight_gradients_sets_flag_temporarily():
    assert conv2d_gradfix.enabled is False and conv2d_gradfix.weight_gradients_disabled is False
    with conv2d_gradfix.no_weight_gradients():
        assert conv2d_gradfix.weight_gradients_disabled is True
        with conv2d_gradfix.no_weight_gradients(disable=False):
            assert conv2d_gradfix.weight_gradients_disabled is True
    assert conv2d_gradfix.weight_gradients_disabled is False

#----------------------------------------------------------------------------

def _generic_conv2d_resample(x, w, f, up, down, padding, groups, flip_weight, flip_filter):
    """The definition, on the naive oracle: upsample + pad, convolve, filter + decimate."""
    fw, fh = (1, 1) if f is None else (f.shape[-1], f.shape[0])
    px0, px1, py0, py1 = padding
    if up > 1:
        px0, px1, py0, py1 = px0 + (fw + up - 1) // 2, px1 + (fw - up) // 2, py0 + (fh + up - 1) // 2, py1 + (fh - up) // 2
    if down > 1:
        px0, px1, py0, py1 = px0 + (fw - down + 1) // 2, px1 + (fw - down) // 2, py0 + (fh - down + 1) // 2, py1 + (fh - down) // 2
    x = oracle_ops.upfirdn2d_ref(x, f if up > 1 else None, up=up, padding=[px0, px1, py0, py1], gain=up ** 2, flip_filter=flip_filter)
    x = F.conv2d(x, w if flip_weight else w.flip([2, 3]), groups=groups)
    return oracle_ops.upfirdn2d_ref(x, f, down=down, flip_filter=flip_filter) if down > 1 else x

@pytest.mark.parametrize('up,down', [(1, 1), (2, 1), (1, 2), (2, 2)])
@pytest.mark.parametrize('k', [1, 3])
@pytest.mark.parametrize('groups,flip_weight,flip_filter,padding', [(1, True, False, [1, 1, 1, 1]), (2, False, True, [0, 1, 2, 0]), (1, False, False, [0, 0, 0, 0])])
def test_conv2d_resample_fast_paths_equal_generic_path(up, down, k, groups, flip_weight, flip_filter, padding):
    gen = torch.Generator().manual_seed(9)
    x = torch.randn([2, 4, 8, 9], dtype=torch.float64, generator=gen)
    w = torch.randn([6, 4 // groups, k, k], dtype=torch.float64, generator=gen)
    for f in [None, upfirdn2d.setup_filter([1, 3, 3, 1]), upfirdn2d.setup_filter(torch.rand([10], generator=gen) + 0.5)]:
        y = conv2d_resample.conv2d_resample(x, w, f=f, up=up, down=down, padding=padding, groups=groups, flip_weight=flip_weight, flip_filter=flip_filter)
        ref = _generic_conv2d_resample(x, w, f, up, down, padding, groups, flip_weight, flip_filter)
        assert y.shape == ref.shape
        assert torch.allclose(y, ref, rtol=1e-10, atol=1e-10)

#----------------------------------------------------------------------------

def test_conv2d_resample_gradcheck_and_gradgradcheck():
    gen = torch.Generator().manual_seed(10)
    f = upfirdn2d.setup_filter([1, 3, 3, 1])
    x = torch.randn([1, 2, 5, 5], dtype=torch.float64, generator=gen, requires_grad=True)
    w = torch.randn([3, 2, 3, 3], dtype=torch.float64, generator=gen, requires_grad=True)
    for up, down in [(2, 1), (1, 2), (1, 1)]:
        fn = lambda x, w: conv2d_resample.conv2d_resample(x, w, f=f, up=up, down=down, padding=1, flip_weight=(up == 1))
        assert torch.autograd.gradcheck(fn, [x, w], fast_mode=True)
        assert torch.autograd.gradgradcheck(fn, [x, w], fast_mode=True)

#----------------------------------------------------------------------------

def test_fma_broadcasts_and_reduces_gradients_to_operand_shapes():
    gen = torch.Generator().manual_seed(11)
    a = torch.randn([2, 3, 1, 1], dtype=torch.float64, generator=gen, requires_grad=True)
    b = torch.randn([1, 3, 4, 4], dtype=torch.float64, generator=gen, requires_grad=True)
    c = torch.randn([2, 1, 4, 4], dtype=torch.float64, generator=gen, requires_grad=True)
    y = fma.fma(a, b, c)
    assert torch.allclose(y, a * b + c)
    ga, gb, gc = torch.autograd.grad(y.square().sum(), [a, b, c])
    ra, rb, rc = torch.autograd.grad((a * b + c).square().sum(), [a, b, c])
    assert ga.shape == a.shape and gb.shape == b.shape and gc.shape == c.shape
    assert torch.allclose(ga, ra) and torch.allclose(gb, rb) and torch.allclose(gc, rc)

#----------------------------------------------------------------------------

@pytest.mark.parametrize('enabled', [False, True])
def test_grid_sample_is_bilinear_zero_padded_with_pytorchs_values_and_gradients(monkeypatch, enabled):
    monkeypatch.setattr(grid_sample_gradfix, 'enabled', enabled)
    gen = torch.Generator().manual_seed(12)
    x = torch.randn([2, 3, 5, 6], dtype=torch.float64, generator=gen, requires_grad=True)
    grid = (torch.rand([2, 4, 4, 2], dtype=torch.float64, generator=gen) * 2.4 - 1.2).requires_grad_(True)
    ref = F.grid_sample(x, grid, mode='bilinear', padding_mode='zeros', align_corners=False)
    y = grid_sample_gradfix.grid_sample(x, grid)
    assert torch.equal(y, ref)
    dy = torch.randn(y.shape, dtype=torch.float64, generator=gen)
    for g, ref_g in zip(torch.autograd.grad(y, [x, grid], dy), torch.autograd.grad(ref, [x, grid], dy)):
        assert torch.equal(g, ref_g)

def test_enabled_grid_sample_has_its_own_double_backward_wrt_input(monkeypatch):
    monkeypatch.setattr(grid_sample_gradfix, 'enabled', True)
    gen = torch.Generator().manual_seed(12)
    x = torch.randn([2, 3, 5, 6], dtype=torch.float64, generator=gen, requires_grad=True)
    grid = torch.rand([2, 4, 4, 2], dtype=torch.float64, generator=gen) * 2.4 - 1.2
    assert torch.autograd.gradcheck(lambda x: grid_sample_gradfix.grid_sample(x, grid), [x])
    assert torch.autograd.gradgradcheck(lambda x: grid_sample_gradfix.grid_sample(x, grid), [x])
    (grad,) = torch.autograd.grad(grid_sample_gradfix.grid_sample(x, grid).square().sum(), [x], create_graph=True)
    assert 'GridSampler2D' not in type(grad.grad_fn).__name__

#----------------------------------------------------------------------------

# conv2d_resample through upfirdn2d's CUDA formulation (banded matrix products), run on CPU.

@pytest.mark.parametrize('up,down', [(1, 1), (2, 1), (1, 2), (2, 2)])
@pytest.mark.parametrize('k', [1, 3])
def test_conv2d_resample_cuda_formulation_equals_generic_path_without_depthwise_convolution(up, down, k, cuda_formulation, monkeypatch):
    gen = torch.Generator().manual_seed(19)
    x = torch.randn([2, 4, 8, 9], dtype=torch.float64, generator=gen, requires_grad=True)
    w = torch.randn([6, 2, k, k], dtype=torch.float64, generator=gen, requires_grad=True)
    filters = [None, upfirdn2d.setup_filter([1, 3, 3, 1]), upfirdn2d.setup_filter(torch.rand([10], generator=gen) + 0.5)]
    refs = [_generic_conv2d_resample(x, w, f, up, down, [0, 1, 2, 0], 2, False, True) for f in filters]
    convolutions = []
    def spy(conv):
        def call(input, weight, *args, groups=1, **kwargs):
            convolutions.append((weight.shape[1], groups)) # [O, I/groups, ...] or transposed [I, O/groups, ...]
            return conv(input, weight, *args, groups=groups, **kwargs)
        return call
    monkeypatch.setattr(torch.nn.functional, 'conv2d', spy(F.conv2d))
    monkeypatch.setattr(torch.nn.functional, 'conv_transpose2d', spy(F.conv_transpose2d))
    for f, ref in zip(filters, refs):
        y = conv2d_resample.conv2d_resample(x, w, f=f, up=up, down=down, padding=[0, 1, 2, 0], groups=2, flip_weight=False, flip_filter=True)
        assert y.shape == ref.shape and torch.allclose(y, ref, rtol=1e-6, atol=1e-6)
        dy = torch.randn(y.shape, dtype=torch.float64, generator=gen)
        for a, r in zip(torch.autograd.grad(y, [x, w], dy), torch.autograd.grad(ref, [x, w], dy)):
            assert torch.allclose(a, r, rtol=1e-6, atol=1e-6)
    assert convolutions and all(groups == 2 and per_group > 1 for per_group, groups in convolutions) # the layer's own; no depthwise FIR

#----------------------------------------------------------------------------
