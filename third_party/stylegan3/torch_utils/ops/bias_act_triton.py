"""bias_act's Triton kernels for the activations whose derivative follows from the sign of the output
(linear, relu, lrelu with gain > 0): y = clamp(act(x + b) * gain) in one pass, and its gradient
dy * act'(y) * gain * [|y| < clamp] in one pass.

The gradient is linear in dy and piecewise constant in y, so its own gradient is the same kernel again:
gradients of every order (R1 runs the discriminator's double backward) are these two kernels. Imported
only where `triton_select.use_triton()` says a Triton kernel runs (it imports Triton).
"""

import torch
import triton
import triton.language as tl

from . import triton_select

#----------------------------------------------------------------------------

ACTIVATIONS = {'linear': 0, 'relu': 1, 'lrelu': 2} # name -> the kernels' ACT code

# Tile configurations a GPU sweep measures (benchmarks time `run_case()` with each), and the one taken
# where `triton_configs.json` has no entry for the problem.
CANDIDATE_CONFIGS = [dict(BLOCK=block, num_warps=warps) for block in (512, 1024, 2048, 4096) for warps in (4, 8)]
DEFAULT_CONFIG = dict(BLOCK=1024, num_warps=4)

#----------------------------------------------------------------------------

def bias_act(x, b, dim, act, alpha, gain, clamp):
    """bias_act() on parsed arguments (clamp < 0: none) for act in ACTIVATIONS, gain > 0 unless linear.
    Float scalars enter the kernels as float32. Returns a fresh tensor in x's memory layout."""
    return _BiasAct.apply(x, b, dim, act, alpha, gain, clamp)

#----------------------------------------------------------------------------

class _BiasAct(torch.autograd.Function):
    """y = clamp(act(x + b) * gain), keeping y for the gradient (nothing for linear without a clamp).
    An absent incoming gradient stays absent."""

    @staticmethod
    def forward(ctx, x, b, dim, act, alpha, gain, clamp):
        ctx.set_materialize_grads(False)
        x = _dense(x)
        y = torch.empty_like(x)
        if y.numel() > 0:
            config = _config(x, act, b is not None)
            _forward_kernel[(triton.cdiv(x.numel(), config['BLOCK']),)](
                x, x if b is None else b, y, x.numel(), x.stride(dim), x.shape[dim], alpha, gain, clamp,
                HAS_BIAS=b is not None, ACT=ACTIVATIONS[act], CLAMP=clamp >= 0, COMPUTE=_compute_dtype(x), **_launch(config))
        ctx.config = (dim, act, alpha, gain, clamp)
        ctx.save_for_backward(None if act == 'linear' and clamp < 0 else y)
        return y

    @staticmethod
    def backward(ctx, dy):
        if dy is None:
            return None, None, None, None, None, None, None
        (y,) = ctx.saved_tensors
        dim, act, alpha, gain, clamp = ctx.config
        dx = _ActGrad.apply(dy, None if y is None else y.detach(), act, alpha, gain, clamp)
        db = dx.sum([i for i in range(dx.ndim) if i != dim]) if ctx.needs_input_grad[1] else None
        return dx, db, None, None, None, None, None

#----------------------------------------------------------------------------

class _ActGrad(torch.autograd.Function):
    """dx = dy * act'(y) * gain * [|y| < clamp]: linear in dy, piecewise constant in y (which gets no gradient),
    so its gradient is itself applied to the incoming gradient. An absent incoming gradient stays absent."""

    @staticmethod
    def forward(ctx, dy, y, act, alpha, gain, clamp):
        ctx.set_materialize_grads(False)
        ctx.config = (act, alpha, gain, clamp)
        ctx.save_for_backward(y)
        dy = _dense(dy) if y is None else _like(dy, y)
        dx = torch.empty_like(dy)
        if dx.numel() > 0:
            config = _config(dy, act, False, grad=True)
            _grad_kernel[(triton.cdiv(dy.numel(), config['BLOCK']),)](
                dy, dy if y is None else y, dx, dy.numel(), alpha, gain, clamp,
                ACT=ACTIVATIONS[act], CLAMP=clamp >= 0, COMPUTE=_compute_dtype(dy), **_launch(config))
        return dx

    @staticmethod
    def backward(ctx, ddx):
        if ddx is None:
            return None, None, None, None, None, None
        (y,) = ctx.saved_tensors
        return _ActGrad.apply(ddx, y, *ctx.config), None, None, None, None, None

#----------------------------------------------------------------------------

def _dense(x):
    """x if its elements fill its storage without gaps (contiguous or channels-last), else a contiguous copy:
    the kernels run over the storage in memory order."""
    if x.is_contiguous() or (x.ndim == 4 and x.is_contiguous(memory_format=torch.channels_last)):
        return x
    return x.contiguous()

def _like(t, ref):
    """t with the strides of the dense tensor ref (a copy only where they differ, e.g. an expanded gradient)."""
    return t if t.stride() == ref.stride() else torch.empty_like(ref, dtype=t.dtype).copy_(t)

def _compute_dtype(x):
    return tl.float64 if x.dtype == torch.float64 else tl.float32

def config_key(x, act, has_bias, grad=False):
    """The tile table's key of a call: kernel, activation, bias or not, dtype."""
    return f'{"grad" if grad else "forward"}-{act}-{"bias" if has_bias else "nobias"}-{str(x.dtype)[6:]}'

def _config(x, act, has_bias, grad=False):
    return triton_select.tile_config('bias_act', config_key(x, act, has_bias, grad), DEFAULT_CONFIG, x.device)

def _launch(config):
    return dict(BLOCK=config['BLOCK'], num_warps=config['num_warps'])

#----------------------------------------------------------------------------

def run_case(shape, dtype, act, config, grad=False, device='cuda'):
    """One problem of the GPU sweep with tile `config` (bias along dim 1, clamp 256, the activation's StyleGAN2
    gain): a zero-argument function that runs the forward kernel (or the gradient kernel) once."""
    x = torch.randn(shape, dtype=dtype, device=device)
    b = torch.randn([shape[1]], dtype=dtype, device=device)
    y = torch.empty_like(x)
    gain = 1.0 if act == 'linear' else 2 ** 0.5
    kwargs = dict(ACT=ACTIVATIONS[act], CLAMP=True, COMPUTE=_compute_dtype(x), **_launch(config))
    grid = (triton.cdiv(x.numel(), config['BLOCK']),)
    if grad:
        return lambda: _grad_kernel[grid](x, b[None, :, None, None].expand(shape).contiguous(), y, x.numel(), 0.2, gain, 256.0, **kwargs)
    return lambda: _forward_kernel[grid](x, b, y, x.numel(), x.stride(1), shape[1], 0.2, gain, 256.0, HAS_BIAS=True, **kwargs)

#----------------------------------------------------------------------------

@triton.jit
def _forward_kernel(x_ptr, b_ptr, y_ptr, total, b_stride, C, alpha, gain, clamp,
                    HAS_BIAS: tl.constexpr, ACT: tl.constexpr, CLAMP: tl.constexpr, COMPUTE: tl.constexpr, BLOCK: tl.constexpr):
    # BLOCK consecutive elements of the storage; the bias index of storage offset o is (o // stride[dim]) % C
    # in any dense layout.
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    live = offs < total
    v = tl.load(x_ptr + offs, mask=live, other=0).to(COMPUTE)
    if HAS_BIAS:
        v += tl.load(b_ptr + (offs // b_stride) % C, mask=live, other=0).to(COMPUTE)
    if ACT == 1:
        v = tl.where(v < 0, 0, v) # NaN stays NaN, as in F.relu.
    if ACT == 2:
        v = tl.where(v < 0, v * alpha, v)
    v = v * gain
    if CLAMP:
        limit = tl.cast(clamp, COMPUTE) # As the gradient kernel reads it.
        v = tl.where(v > limit, limit, tl.where(v < -limit, -limit, v))
    tl.store(y_ptr + offs, v.to(y_ptr.dtype.element_ty), mask=live)

@triton.jit
def _grad_kernel(dy_ptr, y_ptr, dx_ptr, total, alpha, gain, clamp,
                 ACT: tl.constexpr, CLAMP: tl.constexpr, COMPUTE: tl.constexpr, BLOCK: tl.constexpr):
    # The derivative from the output y (same strides as dy): 1 or the slope by its sign, 0 where it reached
    # the clamp (compared in y's own dtype, in which the clamped values were stored).
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    live = offs < total
    g = tl.load(dy_ptr + offs, mask=live, other=0).to(COMPUTE) * gain
    if ACT != 0 or CLAMP:
        y = tl.load(y_ptr + offs, mask=live, other=0)
        if ACT == 1:
            g = tl.where(y > 0, g, 0)
        if ACT == 2:
            g = tl.where(y > 0, g, g * alpha)
        if CLAMP:
            limit = tl.cast(tl.cast(clamp, COMPUTE), y.dtype)
            g = tl.where((y > -limit) & (y < limit), g, 0)
    tl.store(dx_ptr + offs, g.to(dx_ptr.dtype.element_ty), mask=live)

#----------------------------------------------------------------------------
