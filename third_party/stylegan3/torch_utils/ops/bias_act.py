"""Fused bias + activation + gain + clamp (StyleGAN2/3 layer epilogue) in plain PyTorch."""

import math
import torch
import torch.nn.functional as F
import dnnlib

from . import triton_select

#----------------------------------------------------------------------------

activation_funcs = {
    'linear':   dnnlib.EasyDict(func=lambda x, **_: x,                            def_alpha=0,   def_gain=1,            cuda_idx=1, ref='',  has_2nd_grad=False),
    'relu':     dnnlib.EasyDict(func=lambda x, **_: F.relu(x),                    def_alpha=0,   def_gain=math.sqrt(2), cuda_idx=2, ref='y', has_2nd_grad=False),
    'lrelu':    dnnlib.EasyDict(func=lambda x, alpha, **_: F.leaky_relu(x, alpha), def_alpha=0.2, def_gain=math.sqrt(2), cuda_idx=3, ref='y', has_2nd_grad=False),
    'tanh':     dnnlib.EasyDict(func=lambda x, **_: torch.tanh(x),                def_alpha=0,   def_gain=1,            cuda_idx=4, ref='y', has_2nd_grad=True),
    'sigmoid':  dnnlib.EasyDict(func=lambda x, **_: torch.sigmoid(x),             def_alpha=0,   def_gain=1,            cuda_idx=5, ref='y', has_2nd_grad=True),
    'elu':      dnnlib.EasyDict(func=lambda x, **_: F.elu(x),                     def_alpha=0,   def_gain=1,            cuda_idx=6, ref='y', has_2nd_grad=True),
    'selu':     dnnlib.EasyDict(func=lambda x, **_: F.selu(x),                    def_alpha=0,   def_gain=1,            cuda_idx=7, ref='y', has_2nd_grad=True),
    'softplus': dnnlib.EasyDict(func=lambda x, **_: F.softplus(x),                def_alpha=0,   def_gain=1,            cuda_idx=8, ref='y', has_2nd_grad=True),
    'swish':    dnnlib.EasyDict(func=lambda x, **_: torch.sigmoid(x) * x,         def_alpha=0,   def_gain=math.sqrt(2), cuda_idx=9, ref='x', has_2nd_grad=True),
}

#----------------------------------------------------------------------------

def bias_act(x, b=None, dim=1, act='linear', alpha=None, gain=None, clamp=None, impl='cuda'):
    """Add bias `b` along dimension `dim`, apply activation `act`, scale by `gain`, clamp to [-clamp, clamp].

    `alpha`/`gain` None take the activation's defaults. Gradients of any order w.r.t. x and b.
    Where `triton_select.use_triton()` says so (impl='triton' or STYLESV_OPS=triton), linear, relu and
    lrelu run as Triton kernels (bias_act_triton). Everything else runs the same plain-PyTorch code: one
    autograd node that keeps only the tensor its gradient needs (the output, or the input for swish).
    """
    if act not in activation_funcs:
        raise ValueError(f'bias_act: unknown activation {act!r}; expected one of {sorted(activation_funcs)}')
    if not isinstance(x, torch.Tensor):
        raise ValueError('bias_act: x must be a tensor')
    if clamp is not None and clamp < 0:
        raise ValueError(f'bias_act: clamp must be None or >= 0, got {clamp}')
    spec = activation_funcs[act]
    alpha = float(alpha if alpha is not None else spec.def_alpha)
    gain = float(gain if gain is not None else spec.def_gain)
    clamp = float(clamp if clamp is not None else -1)
    if b is not None:
        if not isinstance(b, torch.Tensor) or b.ndim != 1 or not (0 <= dim < x.ndim) or b.shape[0] != x.shape[dim]:
            raise ValueError(f'bias_act: b must be 1-D with length x.shape[{dim}]')
        b = b.to(x.dtype)
    if act == 'linear' and b is None and gain == 1 and clamp < 0:
        return x
    if triton_select.use_triton(x, impl) and _triton_covers(x, act, alpha, gain):
        from . import bias_act_triton
        return bias_act_triton.bias_act(x, b, dim, act, alpha, gain, clamp)
    return _BiasAct.apply(x, b, dim, act, alpha, gain, clamp)

#----------------------------------------------------------------------------

class _BiasAct(torch.autograd.Function):
    """y = clamp(act(x + b) * gain); the backward is built from differentiable ops.

    The forward works in place on the one fresh tensor x + b (for relu/lrelu, (x + b) * gain in one
    pass). Where the derivative follows from the sign of the output (relu, lrelu) and for the clamp
    mask, the backward uses PyTorch's own activation-gradient kernels (one pass each, differentiable
    w.r.t. the incoming gradient); on CPU the clamp and its mask are skipped when no value reaches the
    clamp, the common case. An absent incoming gradient stays absent (not materialised as zeros), so
    that a parameter which a loss does not depend on gets no gradient at all, as with the upstream's kernels.
    """

    @staticmethod
    def forward(ctx, x, b, dim, act, alpha, gain, clamp):
        ctx.set_materialize_grads(False)
        spec = activation_funcs[act]
        if act in _sign_based and gain > 0:
            y = _leaky_relu_scaled(x, b, dim, _sign_based[act](alpha), gain)
        else:
            y = x + _broadcast(b, x, dim) if b is not None else x
            y = spec.func(y, alpha=alpha)
            if y is x: # Linear without bias: the gain (or a copy) makes the fresh tensor.
                y = x * gain if gain != 1 else x.clone()
            elif gain != 1:
                y.mul_(gain)
        if clamp >= 0 and (y.is_cuda or _reaches(y, clamp)):
            y.clamp_(-clamp, clamp)
        else:
            clamp = -1 # Nothing clamped: no mask in the backward.
        ctx.config = (dim, act, alpha, gain, clamp)
        if spec.ref == 'x':
            ctx.save_for_backward(x, b)
        elif spec.ref == 'y' or clamp >= 0:
            ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, dy):
        if dy is None:
            return None, None, None, None, None, None, None
        dim, act, alpha, gain, clamp = ctx.config
        ref = activation_funcs[act].ref
        saved = ctx.saved_tensors
        if ref == 'x':
            x, b = saved
            t = x + _broadcast(b, x, dim) if b is not None else x
            y = activation_funcs[act].func(t.detach(), alpha=alpha) * gain if clamp >= 0 else None
            dt = dy * (_derivatives[act](t, alpha) * gain)
        else:
            y = saved[0] if saved else None
            dt = dy
            if act in _sign_based and gain > 0:
                dt = torch.ops.aten.leaky_relu_backward(dt, y.detach(), _sign_based[act](alpha), True)
            elif ref == 'y':
                dt = dt * _derivatives[act](y / gain if gain != 1 else y, alpha)
            if gain != 1:
                dt = dt * gain
        if clamp >= 0:
            dt = torch.ops.aten.hardtanh_backward(dt, y.detach(), -clamp, clamp)
        db = None
        if ctx.needs_input_grad[1]:
            db = dt.sum([i for i in range(dt.ndim) if i != dim])
        return dt, db, None, None, None, None, None

#----------------------------------------------------------------------------

# Activations that are leaky ReLUs, name -> slope for a given alpha: the derivative is 1 or the slope by
# the sign of the output.
_sign_based = {'relu': lambda alpha: 0.0, 'lrelu': lambda alpha: alpha}

# Derivative of each activation, as a function of its output `y` (ref='y') or its input `x` (ref='x').
# Written in differentiable ops, so the backward pass can itself be differentiated (R1 regularisation).
_SELU_SCALE = 1.0507009873554804934193349852946
_SELU_ALPHA = 1.6732632423543772848170429916717
_derivatives = {
    'linear':   lambda y, alpha: torch.ones_like(y),
    'relu':     lambda y, alpha: (y > 0).to(y.dtype),
    'lrelu':    lambda y, alpha: torch.where(y > 0, torch.ones_like(y), torch.full_like(y, alpha)),
    'tanh':     lambda y, alpha: 1 - y * y,
    'sigmoid':  lambda y, alpha: y * (1 - y),
    'elu':      lambda y, alpha: torch.where(y > 0, torch.ones_like(y), y + 1),
    'selu':     lambda y, alpha: torch.where(y > 0, torch.full_like(y, _SELU_SCALE), y + _SELU_SCALE * _SELU_ALPHA),
    'softplus': lambda y, alpha: 1 - torch.exp(-y),
    'swish':    lambda x, alpha: torch.sigmoid(x) * (1 + x * (1 - torch.sigmoid(x))),
}

#----------------------------------------------------------------------------

def _triton_covers(x, act, alpha, gain):
    """Whether bias_act_triton computes this case: linear, or a leaky ReLU whose derivative follows from
    the sign of its output (gain > 0, slope >= 0), on floating-point x that 32-bit indices can address."""
    sign_based = act in _sign_based and gain > 0 and _sign_based[act](alpha) >= 0
    return (act == 'linear' or sign_based) and x.is_floating_point() and x.numel() < 2 ** 31

#----------------------------------------------------------------------------

def _leaky_relu_scaled(x, b, dim, slope, gain):
    """lrelu(x + b) * gain as a fresh tensor in two passes: lrelu(v) * g = lrelu(g * v) for g > 0, so the
    gain joins the bias addition (one fused multiply-add) instead of a pass of its own."""
    if b is not None:
        return F.leaky_relu_(torch.add(_broadcast(b * gain, x, dim), x, alpha=gain), slope)
    return F.leaky_relu_(x * gain, slope) if gain != 1 else F.leaky_relu(x, slope)

#----------------------------------------------------------------------------

def _broadcast(b, x, dim):
    """View the 1-D bias so that it broadcasts along `dim` of x."""
    return b.reshape([-1 if i == dim else 1 for i in range(x.ndim)])

#----------------------------------------------------------------------------

def _reaches(x, limit):
    """Whether any |x| >= limit (then clamping to +-limit, or its gradient mask, changes something).

    Reduces over the memory order, so channels-last needs no copy. One host sync.
    """
    flat = x.permute(0, 2, 3, 1) if x.ndim == 4 and x.is_contiguous(memory_format=torch.channels_last) else x
    lo, hi = torch.aminmax(flat.reshape(-1))
    return bool(lo <= -limit) or bool(hi >= limit)

#----------------------------------------------------------------------------
