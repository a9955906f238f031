"""Tests for torch_utils.ops.bias_act: every activation against its formula, gradients of first and second order."""

import math
import pytest
import torch

from torch_utils.ops import bias_act
from tests import oracle_ops

#----------------------------------------------------------------------------

_formulas = {
    'linear':   lambda x, alpha: x,
    'relu':     lambda x, alpha: torch.where(x > 0, x, torch.zeros_like(x)),
    'lrelu':    lambda x, alpha: torch.where(x > 0, x, x * alpha),
    'tanh':     lambda x, alpha: (x.exp() - (-x).exp()) / (x.exp() + (-x).exp()),
    'sigmoid':  lambda x, alpha: 1 / (1 + (-x).exp()),
    'elu':      lambda x, alpha: torch.where(x > 0, x, x.exp() - 1),
    'selu':     lambda x, alpha: 1.0507009873554805 * torch.where(x > 0, x, 1.6732632423543772 * (x.exp() - 1)),
    'softplus': lambda x, alpha: (1 + x.exp()).log(),
    'swish':    lambda x, alpha: x / (1 + (-x).exp()),
}

_table = {  # name: (def_alpha, def_gain, cuda_idx, ref, has_2nd_grad)
    'linear': (0, 1, 1, '', False), 'relu': (0, math.sqrt(2), 2, 'y', False), 'lrelu': (0.2, math.sqrt(2), 3, 'y', False),
    'tanh': (0, 1, 4, 'y', True), 'sigmoid': (0, 1, 5, 'y', True), 'elu': (0, 1, 6, 'y', True),
    'selu': (0, 1, 7, 'y', True), 'softplus': (0, 1, 8, 'y', True), 'swish': (0, math.sqrt(2), 9, 'x', True),
}

def _reference(x, b, dim, act, alpha, gain, clamp):
    spec = bias_act.activation_funcs[act]
    alpha = spec.def_alpha if alpha is None else alpha
    gain = spec.def_gain if gain is None else gain
    y = _formulas[act](x + b.reshape([-1 if i == dim else 1 for i in range(x.ndim)]), alpha) * gain
    return y if clamp is None else y.clamp(-clamp, clamp)

#----------------------------------------------------------------------------

def test_activation_table_matches_interface():
    assert set(bias_act.activation_funcs) == set(_table)
    for name, (def_alpha, def_gain, cuda_idx, ref, has_2nd_grad) in _table.items():
        spec = bias_act.activation_funcs[name]
        assert (spec.def_alpha, spec.cuda_idx, spec.ref, spec.has_2nd_grad) == (def_alpha, cuda_idx, ref, has_2nd_grad)
        assert spec.def_gain == pytest.approx(def_gain)
        x = torch.linspace(-3, 3, 13, dtype=torch.float64)
        assert torch.allclose(spec.func(x, alpha=spec.def_alpha), _formulas[name](x, spec.def_alpha))

#----------------------------------------------------------------------------

@pytest.mark.parametrize('act', list(_formulas))
def test_bias_act_matches_formula_and_its_gradients(act):
    gen = torch.Generator().manual_seed(6)
    for shape, dim, alpha, gain, clamp in [([2, 5, 3, 4], 1, None, None, None), ([3, 4], 1, 0.3, 1.7, 0.9), ([4, 3, 2], 0, None, 0.5, 0.2)]:
        x0 = torch.randn(shape, dtype=torch.float64, generator=gen) * 2
        b0 = torch.randn([shape[dim]], dtype=torch.float64, generator=gen)
        results = []
        for fn in (bias_act.bias_act, _reference):
            x, b = x0.clone().requires_grad_(True), b0.clone().requires_grad_(True)
            y = fn(x, b, dim, act, alpha, gain, clamp)
            gx, gb = torch.autograd.grad((y * y.detach().sin()).sum(), [x, b], create_graph=True)
            if gx.requires_grad or gb.requires_grad:
                r1 = torch.autograd.grad(gx.square().sum() + gb.square().sum(), [x, b], allow_unused=True)
                r1 = [torch.zeros_like(t) if g is None else g for t, g in zip([x, b], r1)]
            else:
                r1 = [torch.zeros_like(x), torch.zeros_like(b)]
            results.append([y, gx, gb, *r1])
        for ours, ref in zip(*results):
            assert torch.allclose(ours, ref, rtol=1e-9, atol=1e-9)

#----------------------------------------------------------------------------

@pytest.mark.parametrize('act', list(_formulas))
def test_bias_act_gradcheck_and_gradgradcheck(act):
    gen = torch.Generator().manual_seed(7)
    x = torch.randn([3, 4, 2], dtype=torch.float64, generator=gen, requires_grad=True)
    b = torch.randn([4], dtype=torch.float64, generator=gen, requires_grad=True)
    fn = lambda x, b: bias_act.bias_act(x, b, act=act, alpha=0.3, gain=1.3, clamp=1.5)
    assert torch.autograd.gradcheck(fn, [x, b])
    assert torch.autograd.gradgradcheck(fn, [x, b])

def test_clamp_gradient_mask_at_the_limit_and_when_nothing_reaches_it():
    # On CPU the clamp and its mask are skipped when no |y| reaches the limit; a value exactly at the
    # limit must still lose its gradient, as with an unconditional clamp.
    x = torch.tensor([[-2.0, -0.5, 0.5, 1.0, 3.0]], requires_grad=True)
    for clamp, expected in [(1.0, [0, 1, 1, 0, 0]), (4.0, [1, 1, 1, 1, 1])]:
        (grad,) = torch.autograd.grad(bias_act.bias_act(x, clamp=clamp).sum(), [x])
        assert grad.tolist() == [expected]

@pytest.mark.parametrize('act', list(_formulas))
def test_oracle_bias_act_is_the_same_function(act):
    # The benchmarks' plain baseline (tests/oracle_ops.bias_act_ref) computes what bias_act computes.
    x0 = torch.randn([2, 5, 3, 3], dtype=torch.float64, generator=torch.Generator().manual_seed(8)) * 2
    b0 = torch.linspace(-1, 1, 5, dtype=torch.float64)
    results = []
    for fn in (bias_act.bias_act, oracle_ops.bias_act_ref):
        x, b = x0.clone().requires_grad_(True), b0.clone().requires_grad_(True)
        y = fn(x, b, act=act, alpha=0.3, gain=1.2, clamp=1.5)
        results.append([y, *torch.autograd.grad((y * y.detach().cos()).sum(), [x, b])])
    for ours, ref in zip(*results):
        assert torch.allclose(ours, ref, rtol=1e-9, atol=1e-9)

#----------------------------------------------------------------------------

def test_lrelu_with_bias_and_gain_makes_two_passes_over_the_tensor():
    # The layer epilogue of every StyleGAN2 convolution: bias, leaky ReLU, gain (lrelu(g*v) = g*lrelu(v),
    # so the gain joins the bias addition). On CUDA each pass is a kernel over the whole activation.
    x, b = torch.randn([2, 8, 16, 16]), torch.randn([8])
    with torch.profiler.profile(record_shapes=True) as prof:
        bias_act.bias_act(x, b, act='lrelu', gain=1.4)
    passes = [e.name for e in prof.events() if e.cpu_parent is not None and e.cpu_parent.name == '_BiasAct' and list(x.shape) in e.input_shapes]
    assert len(passes) == 2, passes

#----------------------------------------------------------------------------

@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_bias_act_half_precision_close_to_float32_and_keeps_dtype(dtype):
    x = torch.randn([4, 8, 3, 3])
    b = torch.randn([8])
    for act in _formulas:
        ref = bias_act.bias_act(x, b, act=act, clamp=2)
        y = bias_act.bias_act(x.to(dtype), b.to(dtype), act=act, clamp=2)
        assert y.dtype == dtype
        assert torch.allclose(y.float(), ref, atol=0.03, rtol=0.02)

#----------------------------------------------------------------------------

def test_bias_act_linear_without_bias_gain_or_clamp_is_identity():
    x = torch.randn([2, 3])
    assert bias_act.bias_act(x) is x

#----------------------------------------------------------------------------

def test_bias_act_rejects_bad_arguments():
    x = torch.zeros([2, 3])
    with pytest.raises(ValueError):
        bias_act.bias_act(x, act='gelu')
    with pytest.raises(ValueError):
        bias_act.bias_act(x, torch.zeros([2]))
    with pytest.raises(ValueError):
        bias_act.bias_act(x, clamp=-1)

#----------------------------------------------------------------------------
