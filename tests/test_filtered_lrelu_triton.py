"""Tests for the fused Triton filtered_lrelu (torch_utils.ops.filtered_lrelu_triton), on CPU through Triton's
interpreter, against the zero-stuffing oracle and the PyTorch path."""

import importlib.util
import os
import subprocess
import sys

import pytest
import torch

from torch_utils.ops import filtered_lrelu
from torch_utils.ops import triton_select
from tests import oracle_ops
from tests.test_filtered_lrelu import _lowpass, _radial

pytestmark = pytest.mark.skipif(importlib.util.find_spec('triton') is None, reason='Triton is not installed')

@pytest.fixture(autouse=True)
def interpreter(triton_interpreter):
    """Triton's interpreter for CPU tensors in every test here."""

#----------------------------------------------------------------------------

def _rank1(taps_y, taps_x):
    return torch.outer(_lowpass(taps_y), _lowpass(taps_x))

# (input size, up, down, fu, fd, padding, slope, clamp, flip_filter, gain): every rate and filter length of
# stylegan3-t (benchmarks/bench_ops.py's stylegan3_layers) at a few pixels, each with other activation
# settings; with the default tiles most span several tiles of output and of input.
_cases = {
    'T_same_rate':  (20, 2, 2, _lowpass(12), _lowpass(12), [9, 8, 9, 8],         0.2, 0.3,  False, 1.3),
    'T_up4':        (16, 4, 2, _lowpass(24), _lowpass(12), [-6, -9, -6, -9],     0.2, None, True,  2 ** 0.5),
    'T_last':       (30, 2, 2, _lowpass(12), _lowpass(12), [-11, -12, -11, -12], 0.2, 0.3,  True,  1.0),
    'torgb':        (9,  1, 1, None,         None,         [0, 0, 0, 0],         1.0, None, False, 1.0),
    'up2_down1':    (9,  2, 1, _lowpass(12), None,         [1, 2, 3, 4],         1.0, 0.3,  False, 1.0),
    'up1_down2':    (12, 1, 2, None,         _lowpass(12), [3, 2, 4, 1],         0.0, None, False, 2.0),
    'up4_down1':    (7,  4, 1, _lowpass(24), None,         [12, 11, 10, 13],     0.2, 0.5,  False, 1.0),
    'up2_down4':    (21, 2, 4, _lowpass(12), _lowpass(24), [5, 6, 7, 4],         0.2, 0.3,  True,  1.0),
    'rank1_2d':     (11, 2, 2, _rank1(4, 6), _rank1(6, 4), [3, 2, 4, 1],         0.2, 0.3,  False, 1.3),
}

def _case(name, dtype=torch.float32, N=1, C=3, seed=0):
    size, up, down, fu, fd, padding, slope, clamp, flip_filter, gain = _cases[name]
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn([N, C, size, size + 2], generator=gen).to(dtype) # Odd sizes where size is.
    b = torch.randn([C], generator=gen).to(dtype)
    return x, b, dict(fu=fu, fd=fd, up=up, down=down, padding=padding, gain=gain, slope=slope, clamp=clamp, flip_filter=flip_filter)

def _values_and_gradients(fn, x0, b0, **kwargs):
    x, b = x0.clone().requires_grad_(True), b0.clone().requires_grad_(True)
    y = fn(x, b=b, **kwargs)
    dy = torch.linspace(-1, 1, y.numel(), dtype=y.dtype).reshape(y.shape)
    return [y, *torch.autograd.grad(y, [x, b], dy)]

def _triton(x, **kwargs):
    y = filtered_lrelu.filtered_lrelu(x, impl='triton', **kwargs)
    assert type(y.grad_fn).__name__ == '_FilteredLReLUTritonBackward' # The kernels ran, not a fallback.
    return y

def _assert_close(ours, ref, rel):
    for a, r in zip(ours, ref):
        assert a.shape == r.shape
        assert torch.allclose(a.double(), r.double(), rtol=rel, atol=rel * r.abs().max().item())

#----------------------------------------------------------------------------

@pytest.mark.parametrize('name', list(_cases))
def test_triton_values_and_gradients_match_the_oracle(name):
    x, b, kwargs = _case(name)
    ours = _values_and_gradients(_triton, x, b, **kwargs)
    ref = _values_and_gradients(oracle_ops.filtered_lrelu_ref, x.double(), b.double(), **kwargs)
    assert ours[0].dtype == torch.float32 and ours[0].is_contiguous() and ours[1].is_contiguous()
    _assert_close(ours, ref, 1e-5)

@pytest.mark.parametrize('name', ['T_same_rate', 'T_up4'])
def test_triton_half_precision_close_to_float32_oracle(name):
    x, b, kwargs = _case(name, dtype=torch.float16, seed=1)
    kwargs['clamp'] = 2.0
    ours = _values_and_gradients(_triton, x, b, **kwargs)
    ref = _values_and_gradients(oracle_ops.filtered_lrelu_ref, x.float(), b.float(), **kwargs)
    assert all(t.dtype == torch.float16 for t in ours)
    _assert_close(ours, ref, 0.02)

#----------------------------------------------------------------------------

def test_triton_keeps_a_one_byte_code_per_upsampled_sample_only_for_a_backward(monkeypatch):
    from torch_utils.ops import filtered_lrelu_triton
    x, b, kwargs = _case('T_same_rate')
    y = _triton(x.requires_grad_(True), b=b, **kwargs)
    fu, fd, up, down, slope, clamp, gain = [kwargs[k] for k in ('fu', 'fd', 'up', 'down', 'slope', 'clamp', 'gain')]
    padding = filtered_lrelu._trimmed_padding(x.shape, fu, fd, up, down, kwargs['padding'])
    z = oracle_ops.upfirdn2d_ref(x.detach().double() + b.double().reshape(1, -1, 1, 1), fu, up=up, padding=padding, gain=up ** 2)
    z = (torch.nn.functional.leaky_relu(z, slope) * gain).clamp(-clamp, clamp) # The activation's output.
    code = y.grad_fn.code
    assert code.dtype == torch.uint8 and set(code.unique().tolist()) == {0, 1, 2}
    assert torch.equal(code, filtered_lrelu._derivative_code(z, clamp))
    codes = _spy(monkeypatch, filtered_lrelu_triton, 'forward', lambda result: result[1])
    with torch.no_grad():
        filtered_lrelu.filtered_lrelu(x, b=b, impl='triton', **kwargs)
    filtered_lrelu.filtered_lrelu(x.detach(), b=b, impl='triton', **kwargs)
    assert codes == [None, None] # Inference, or nothing requiring a gradient: no pass writes a code.

def _spy(monkeypatch, module, name, record):
    """Replace module.name by a wrapper that appends record(result) of each call to the returned list."""
    calls, fn = [], getattr(module, name)
    def wrapper(*args, **kwargs):
        result = fn(*args, **kwargs)
        calls.append(record(result))
        return result
    monkeypatch.setattr(module, name, wrapper)
    return calls

#----------------------------------------------------------------------------

def test_triton_keeps_channels_last_layout_and_matches_contiguous():
    x, b, kwargs = _case('T_up4', N=2, C=2)
    ours = _values_and_gradients(_triton, x.contiguous(memory_format=torch.channels_last), b, **kwargs)
    ref = _values_and_gradients(_triton, x, b, **kwargs)
    assert ours[0].is_contiguous(memory_format=torch.channels_last) and ours[1].is_contiguous(memory_format=torch.channels_last)
    _assert_close(ours, ref, 1e-6)

def test_triton_gradient_of_x_alone_and_of_b_alone():
    x, b, kwargs = _case('up2_down1')
    (dx,) = torch.autograd.grad(_triton(x.requires_grad_(True), b=b, **kwargs).sum(), [x])
    (db,) = torch.autograd.grad(_triton(x.detach(), b=b.requires_grad_(True), **kwargs).sum(), [b])
    assert torch.allclose(db, dx.sum([0, 2, 3]), rtol=1e-5, atol=1e-5)
    (dx,) = torch.autograd.grad(_triton(x, **kwargs).sum(), [x]) # No bias.
    xr = x.detach().double().requires_grad_(True)
    (ref,) = torch.autograd.grad(oracle_ops.filtered_lrelu_ref(xr, **kwargs).sum(), [xr])
    _assert_close([dx], [ref], 1e-5)

#----------------------------------------------------------------------------

def test_triton_benchmark_hook_runs_the_given_tile_configurations():
    from torch_utils.ops import filtered_lrelu_triton
    x, b, kwargs = _case('T_up4')
    xr, br = x.double().requires_grad_(True), b.double().requires_grad_(True)
    y = oracle_ops.filtered_lrelu_ref(xr, b=br, **kwargs)
    ref = [y, *torch.autograd.grad(y, [xr, br], torch.ones_like(y))] # The hook's backward takes dy = 1.
    shapes = {(c['BLOCK_H'], c['BLOCK_W'], c['PLANES']): c for c in filtered_lrelu_triton.CANDIDATE_CONFIGS}
    for config in [shapes[8, 16, 1], shapes[16, 16, 4]]: # Not square; several planes per program, one dead.
        _assert_close(filtered_lrelu_triton.run_case(x, b, kwargs, config, config), ref, 1e-5)
    y = filtered_lrelu_triton.run_case(x, b, kwargs, shapes[8, 8, 4]) # The forward alone.
    _assert_close([y], ref[:1], 1e-5)

#----------------------------------------------------------------------------

def test_triton_second_order_recomputes_through_the_pytorch_path(monkeypatch):
    from torch_utils.ops import filtered_lrelu_triton
    x, b, kwargs = _case('T_same_rate', C=2)
    p0 = torch.tensor(1.5)
    results = []
    monkeypatch.setattr(filtered_lrelu_triton, 'backward', None) # The backward kernel has no second order.
    for fn in (_triton, oracle_ops.filtered_lrelu_ref):
        xg, bg, p = x.clone().requires_grad_(True), b.clone().requires_grad_(True), p0.clone().requires_grad_(True)
        y = fn(xg, b=bg, **kwargs)
        gx, gb = torch.autograd.grad((y * p * y.detach().cos()).sum(), [xg, bg], create_graph=True)
        (gp,) = torch.autograd.grad(gx.square().sum() + gb.square().sum(), [p])
        results.append([gx, gb, gp])
    _assert_close(results[0], [t.double() for t in results[1]], 1e-5)

def test_triton_first_order_runs_the_backward_kernel_not_the_pytorch_path(monkeypatch):
    x, b, kwargs = _case('T_same_rate', C=2)
    ref = _values_and_gradients(_triton, x, b, **kwargs)
    monkeypatch.setattr(filtered_lrelu, '_filtered_lrelu', None)
    _assert_close(_values_and_gradients(_triton, x, b, **kwargs), ref, 0)

#----------------------------------------------------------------------------

def test_triton_falls_back_for_radial_filters_double_and_without_the_interpreter(monkeypatch):
    x, b, kwargs = _case('T_same_rate', C=2)
    for args in [(x, dict(kwargs, fd=_radial(12))), (x.double(), kwargs)]:
        y = filtered_lrelu.filtered_lrelu(args[0], b=b, impl='triton', **args[1])
        assert type(y.grad_fn).__name__ != '_FilteredLReLUTritonBackward' # Unfused: upfirdn2d's own Triton passes.
        assert torch.allclose(y, filtered_lrelu.filtered_lrelu(args[0], b=b, impl='ref', **args[1]), rtol=1e-5, atol=1e-6)
    monkeypatch.setenv('TRITON_INTERPRET', '0') # CPU tensors without the interpreter: the PyTorch path.
    y = filtered_lrelu.filtered_lrelu(x.requires_grad_(True), b=b, impl='triton', **kwargs)
    assert type(y.grad_fn).__name__ != '_FilteredLReLUTritonBackward'
    assert torch.equal(y, filtered_lrelu.filtered_lrelu(x, b=b, impl='ref', **kwargs))

#----------------------------------------------------------------------------

def test_generator_with_triton_ops_equals_the_pytorch_path(monkeypatch):
    # A whole small stylegan3-t generator with STYLESV_OPS=triton against the plain path: images and every
    # parameter's gradient. Few programs per layer (the interpreter's cost is per program and per operation;
    # the tiling is tested above), tiles of at most 64 upsampled samples (larger products are slow on CPU).
    from tests.test_networks_stylegan3 import _small_generator
    from torch_utils.ops import filtered_lrelu_triton
    forwards = _spy(monkeypatch, filtered_lrelu_triton, 'forward', lambda result: result[0].shape)
    backwards = _spy(monkeypatch, filtered_lrelu_triton, 'backward', lambda result: result[0].shape)
    monkeypatch.setattr(triton_select, 'tile_config', lambda kernel, key, default, device=None: dict(default, BLOCK_H=27, BLOCK_W=27, PLANES=8))
    torch.manual_seed(0)
    G = _small_generator('t', res=16, num_layers=3, channel_max=4)
    z = torch.randn([2, G.z_dim])
    results = []
    for ops in ('', 'triton'):
        monkeypatch.setenv(triton_select.ENV, ops)
        G.zero_grad(set_to_none=True)
        img = G(z, None, noise_mode='const')
        (img * img.detach().cos()).sum().backward()
        results.append([img] + [p.grad for p in G.parameters()])
    layers = G.synthesis.layer_names
    assert len(forwards) == len(backwards) == len(layers) # Every layer, only with STYLESV_OPS=triton.
    for a, r in zip(*results):
        assert torch.allclose(a, r, rtol=1e-4, atol=1e-5 * r.abs().max().item()) # float32 rounding

#----------------------------------------------------------------------------

# Run in a fresh process without the interpreter: captures the launches of forward() and backward() for an
# fp16 layer with up=4 (the largest tiles) and compiles each kernel with those arguments for sm90.
_COMPILE_FOR_SM90 = r'''
import torch, triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from torch_utils.ops import filtered_lrelu_triton as m
from tests.test_filtered_lrelu import _lowpass
launches = []
class Capture:
    def __init__(self, fn):
        self.fn = fn
    def __getitem__(self, grid):
        return lambda *args, **kwargs: launches.append((self.fn, args, kwargs))
m._forward_kernel, m._backward_kernel = Capture(m._forward_kernel), Capture(m._backward_kernel)
x, b, fu, fd = torch.zeros([2, 3, 16, 17], dtype=torch.float16), torch.zeros([3], dtype=torch.float16), _lowpass(24), _lowpass(12)
layer = dict(fu=fu, fd=fd, up=4, down=2, padding=(-6, -9, -6, -9), gain=2 ** 0.5, slope=0.2, flip_filter=False)
y, code = m.forward(x, b, clamp=256.0, write_code=True, **layer)
m.backward(torch.ones_like(y), code, x, need_db=True, **layer)
types = {torch.float16: '*fp16', torch.float32: '*fp32', torch.uint8: '*u8'}
for fn, args, kwargs in launches:
    num_warps = kwargs.pop('num_warps')
    signature = {n: types[a.dtype] if isinstance(a, torch.Tensor) else 'fp32' if isinstance(a, float) else 'i32' for n, a in zip(fn.arg_names, args)}
    signature.update({n: 'constexpr' for n in kwargs})
    source = ASTSource(fn, signature, constexprs={(fn.arg_names.index(n),): v for n, v in kwargs.items()})
    triton.compile(source, target=GPUTarget('cuda', 90, 32), options=dict(num_warps=num_warps))
print(len(launches), 'compiled')
'''

def test_triton_kernels_compile_for_a_gpu_without_one():
    # The interpreter does not check what only the compiler does (types of tl.dot operands, shapes, layouts).
    triton = pytest.importorskip('triton.backends.nvidia') and pytest.importorskip('triton')
    if tuple(int(v) for v in triton.__version__.split('.')[:2]) < (3, 9):
        pytest.skip('ahead-of-time compilation through the compiler API of Triton >= 3.9')
    env = {k: v for k, v in os.environ.items() if k != 'TRITON_INTERPRET'}
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env['PYTHONPATH'] = os.pathsep.join([root, os.path.join(root, 'third_party', 'stylegan3'), env.get('PYTHONPATH', '')])
    result = subprocess.run([sys.executable, '-c', _COMPILE_FOR_SM90], env=env, cwd=root, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stdout.strip() == '2 compiled', result.stderr[-3000:]

#----------------------------------------------------------------------------
