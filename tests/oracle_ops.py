"""Naive formulations of upfirdn2d, filtered_lrelu and bias_act: test oracle and benchmark baseline.

Independent of the project's ops: every sample of the zero-stuffed image is materialised and filtered
at full rate, then decimated, exactly as the operations are defined; bias, activation, gain and clamp
are separate PyTorch ops, each its own autograd node.
"""

import contextlib
import math
import numbers
import torch
import torch.nn.functional as F

#----------------------------------------------------------------------------

def upfirdn2d_ref(x, f, up=1, down=1, padding=0, flip_filter=False, gain=1, impl='ref'):
    """Zero insertion after each sample -> zero pad/crop -> valid FIR (true convolution) -> decimation."""
    upx, upy = _pair(up)
    downx, downy = _pair(down)
    px0, px1, py0, py1 = _quad(padding)
    if f is None:
        f = torch.ones([1, 1], dtype=torch.float32, device=x.device)
    N, C, H, W = x.shape

    # Zero insertion: [N, C, H, 1, W, 1] -> [N, C, H, upy, W, upx] -> [N, C, H*upy, W*upx].
    x = x.reshape([N, C, H, 1, W, 1])
    x = F.pad(x, [0, upx - 1, 0, 0, 0, upy - 1])
    x = x.reshape([N, C, H * upy, W * upx])

    # Pad, then crop for negative padding.
    x = F.pad(x, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    x = x[:, :, max(-py0, 0) : x.shape[2] - max(-py1, 0), max(-px0, 0) : x.shape[3] - max(-px1, 0)]

    # Valid filtering: conv2d is a correlation, so flip the filter for a true convolution.
    f = f.to(x.dtype) * (gain ** (f.ndim / 2))
    if not flip_filter:
        f = f.flip(list(range(f.ndim)))
    if f.ndim == 2:
        x = F.conv2d(x, f[None, None].repeat([C, 1, 1, 1]), groups=C)
    else:
        x = F.conv2d(x, f[None, None, None, :].repeat([C, 1, 1, 1]), groups=C)
        x = F.conv2d(x, f[None, None, :, None].repeat([C, 1, 1, 1]), groups=C)
    return x[:, :, ::downy, ::downx]

#----------------------------------------------------------------------------

def filtered_lrelu_ref(x, fu=None, fd=None, b=None, up=1, down=1, padding=0, gain=2 ** 0.5, slope=0.2, clamp=None, flip_filter=False, impl='ref'):
    """bias -> upfirdn2d(fu, up, padding, gain=up**2) -> lrelu * gain -> clamp -> upfirdn2d(fd, down)."""
    if b is not None:
        x = x + b.to(x.dtype).reshape([1, -1, 1, 1])
    x = upfirdn2d_ref(x, fu, up=up, padding=padding, flip_filter=flip_filter, gain=up ** 2)
    x = F.leaky_relu(x, slope) * gain
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return upfirdn2d_ref(x, fd, down=down, flip_filter=flip_filter)

#----------------------------------------------------------------------------

# name: (function of x and alpha, default alpha, default gain)
_activations = {
    'linear':   (lambda x, alpha: x,                        0,   1),
    'relu':     (lambda x, alpha: F.relu(x),                0,   math.sqrt(2)),
    'lrelu':    (lambda x, alpha: F.leaky_relu(x, alpha),   0.2, math.sqrt(2)),
    'tanh':     (lambda x, alpha: torch.tanh(x),            0,   1),
    'sigmoid':  (lambda x, alpha: torch.sigmoid(x),         0,   1),
    'elu':      (lambda x, alpha: F.elu(x),                 0,   1),
    'selu':     (lambda x, alpha: F.selu(x),                0,   1),
    'softplus': (lambda x, alpha: F.softplus(x),            0,   1),
    'swish':    (lambda x, alpha: torch.sigmoid(x) * x,     0,   math.sqrt(2)),
}

def bias_act_ref(x, b=None, dim=1, act='linear', alpha=None, gain=None, clamp=None, impl='ref'):
    """x + b (broadcast along dim) -> activation -> * gain -> clamp to [-clamp, clamp]."""
    func, def_alpha, def_gain = _activations[act]
    alpha = def_alpha if alpha is None else alpha
    gain = def_gain if gain is None else gain
    if b is not None:
        x = x + b.to(x.dtype).reshape([-1 if i == dim else 1 for i in range(x.ndim)])
    x = func(x, alpha)
    if gain != 1:
        x = x * gain
    if clamp is not None and clamp >= 0:
        x = x.clamp(-clamp, clamp)
    return x

#----------------------------------------------------------------------------

@contextlib.contextmanager
def oracle_ops():
    """Route the project's upfirdn2d/filtered_lrelu/bias_act (and everything calling them) through the oracles."""
    from torch_utils.ops import upfirdn2d, filtered_lrelu, bias_act
    saved = upfirdn2d.upfirdn2d, filtered_lrelu.filtered_lrelu, bias_act.bias_act
    upfirdn2d.upfirdn2d, filtered_lrelu.filtered_lrelu, bias_act.bias_act = upfirdn2d_ref, filtered_lrelu_ref, bias_act_ref
    try:
        yield
    finally:
        upfirdn2d.upfirdn2d, filtered_lrelu.filtered_lrelu, bias_act.bias_act = saved

#----------------------------------------------------------------------------

def _pair(v):
    return (int(v), int(v)) if isinstance(v, numbers.Integral) else (int(v[0]), int(v[1]))

#----------------------------------------------------------------------------

def _quad(p):
    p = [int(p)] * 2 if isinstance(p, numbers.Integral) else [int(v) for v in p]
    return p if len(p) == 4 else [p[0], p[0], p[1], p[1]]

#----------------------------------------------------------------------------
