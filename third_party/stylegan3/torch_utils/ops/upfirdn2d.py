"""Upsample, FIR-filter and downsample 2-D images (StyleGAN2/3 resampling), polyphase in plain PyTorch."""

import numbers
import weakref
import numpy as np
import torch
import torch.nn.functional as F

from . import triton_select

#----------------------------------------------------------------------------

def setup_filter(f, device=torch.device('cpu'), normalize=True, flip_filter=False, gain=1, separable=None):
    """Turn a list/array into a float32 FIR filter tensor for `upfirdn2d()`.

    `separable=None` keeps 1-D filters of 8 taps or more separable and expands shorter ones to their
    2-D outer product (two 1-D passes only pay off for longer filters).
    """
    if f is None:
        f = 1
    f = torch.as_tensor(f, dtype=torch.float32)
    if f.ndim not in (0, 1, 2) or f.numel() == 0:
        raise ValueError(f'setup_filter: expected a non-empty 0-D, 1-D or 2-D filter, got shape {list(f.shape)}')
    if f.ndim == 0:
        f = f[None]
    if separable is None:
        separable = (f.ndim == 1 and f.numel() >= 8)
    if f.ndim == 1 and not separable:
        f = torch.outer(f, f)
    if f.ndim != (1 if separable else 2):
        raise ValueError('setup_filter: a 2-D filter cannot be made separable')
    if normalize:
        f = f / f.sum()
    if flip_filter:
        f = f.flip(list(range(f.ndim)))
    f = f * (gain ** (f.ndim / 2))
    return f.to(device=device)

#----------------------------------------------------------------------------

def upfirdn2d(x, f, up=1, down=1, padding=0, flip_filter=False, gain=1, impl='cuda'):
    """Zero-insert `up`, pad, FIR-filter with `f` and keep every `down`-th sample, per channel.

    x: [N, C, H, W]. f: float32 [fh, fw] (2-D), [fw] (separable: horizontal then vertical pass) or None.
    Padding is w.r.t. the upsampled image; negative padding crops. `flip_filter=False` is a true
    convolution. On CUDA (`impl='cuda'`) each axis is one product with a banded matrix, on tensor cores
    (a 2-D filter of rank > 1 stays a convolution); elsewhere upsampling runs as a strided transposed
    convolution (polyphase, no products with the inserted zeros) and downsampling as a strided
    convolution (only kept samples are computed). Where `triton_select.use_triton()` says so (impl='triton'
    or STYLESV_OPS=triton) it runs as Triton kernels instead. The gradient is upfirdn2d again (the adjoint),
    to any order, in the same formulation.
    """
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        raise ValueError('upfirdn2d: x must be a 4-D [N, C, H, W] tensor')
    upx, upy = _parse_scaling(up)
    downx, downy = _parse_scaling(down)
    px0, px1, py0, py1 = _parse_padding(padding)
    if f is not None and (not isinstance(f, torch.Tensor) or f.ndim not in (1, 2) or f.dtype != torch.float32 or f.requires_grad):
        raise ValueError('upfirdn2d: f must be None or a 1-D or 2-D float32 tensor that does not require grad')
    return _Upfirdn2d.apply(x, f, (upy, upx), (downy, downx), (py0, py1, px0, px1), flip_filter, gain, _formulation(x, impl, upx * upy))

#----------------------------------------------------------------------------

def filter2d(x, f, padding=0, flip_filter=False, gain=1, impl='cuda'):
    """Filter each channel with `f`, padded so that the output has the input's size."""
    px0, px1, py0, py1 = _parse_padding(padding)
    fw, fh = _get_filter_size(f)
    p = [px0 + fw // 2, px1 + (fw - 1) // 2, py0 + fh // 2, py1 + (fh - 1) // 2]
    return upfirdn2d(x, f, padding=p, flip_filter=flip_filter, gain=gain, impl=impl)

#----------------------------------------------------------------------------

def upsample2d(x, f, up=2, padding=0, flip_filter=False, gain=1, impl='cuda'):
    """Upsample by `up` with interpolation filter `f`; the output is `up` times the input size."""
    upx, upy = _parse_scaling(up)
    px0, px1, py0, py1 = _parse_padding(padding)
    fw, fh = _get_filter_size(f)
    p = [px0 + (fw + upx - 1) // 2, px1 + (fw - upx) // 2, py0 + (fh + upy - 1) // 2, py1 + (fh - upy) // 2]
    return upfirdn2d(x, f, up=up, padding=p, flip_filter=flip_filter, gain=gain * upx * upy, impl=impl)

#----------------------------------------------------------------------------

def downsample2d(x, f, down=2, padding=0, flip_filter=False, gain=1, impl='cuda'):
    """Downsample by `down` after anti-aliasing with `f`; the output is the input size over `down`."""
    downx, downy = _parse_scaling(down)
    px0, px1, py0, py1 = _parse_padding(padding)
    fw, fh = _get_filter_size(f)
    p = [px0 + (fw - downx + 1) // 2, px1 + (fw - downx) // 2, py0 + (fh - downy + 1) // 2, py1 + (fh - downy) // 2]
    return upfirdn2d(x, f, down=down, padding=p, flip_filter=flip_filter, gain=gain, impl=impl)

#----------------------------------------------------------------------------

class _Upfirdn2d(torch.autograd.Function):
    """upfirdn2d() on parsed arguments (up/down = (y, x), pad = (y0, y1, x0, x1)) as one autograd node.

    upfirdn2d is linear in x, and its adjoint is upfirdn2d with up and down swapped, the filter flipped
    and the padding complemented; the backward applies that through this same node, so gradients of
    every order are upfirdn2d passes. (PyTorch's own double backward of the grouped convolutions inside
    would also compute a gradient for the fixed filter, one convolution per channel: most of an R1 step.)
    An absent incoming gradient stays absent.
    """

    @staticmethod
    def forward(ctx, x, f, up, down, pad, flip_filter, gain, formulation):
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(f)
        ctx.config = (x.shape[2:], up, down, pad, flip_filter, gain, formulation)
        if formulation == 'triton':
            y = _upfirdn2d_triton(x, f, up, down, pad, flip_filter, gain)
        elif formulation == 'matmul':
            y = _upfirdn2d_matmul(x, f, up, down, pad, flip_filter, gain)
        else:
            # oneDNN's depthwise kernels are faster on channels-last data, most of all transposed (upsampling)
            # and 1-D ones; for a short 2-D filter at the same or a lower rate the two layout copies cost more.
            x_fast, restore = _fast_layout(x, channels_last=(up != (1, 1) or (f is not None and f.ndim == 1)))
            y = restore(_upfirdn2d(x_fast, f, up, down, pad, flip_filter, gain))
        return y.clone() if y is x or y._is_view() else y # A fresh tensor, which callers may modify in place.

    @staticmethod
    def backward(ctx, dy):
        if dy is None:
            return None, None, None, None, None, None, None, None
        (f,) = ctx.saved_tensors
        (H, W), up, down, (py0, py1, px0, px1), flip_filter, gain, formulation = ctx.config
        fh, fw = (1, 1) if f is None else (f.shape[0], f.shape[-1])
        Ho, Wo = dy.shape[2:]
        pad = (fh - 1 - py0, H * up[0] - Ho * down[0] + py0 - up[0] + 1, fw - 1 - px0, W * up[1] - Wo * down[1] + px0 - up[1] + 1)
        dx = _Upfirdn2d.apply(dy, f, down, up, pad, not flip_filter, gain, formulation)
        return dx, None, None, None, None, None, None, None

#----------------------------------------------------------------------------

def _formulation(x, impl, up_factor):
    """'triton' (Triton kernels), 'matmul' (banded matrix products) or 'conv' (depthwise convolutions)."""
    # The kernel indexes with 32-bit integers; its output is at most ~up_factor times the input.
    if triton_select.use_triton(x, impl) and x.dtype in _TRITON_DTYPES and x.numel() * up_factor < 2 ** 30:
        return 'triton'
    return 'matmul' if _matmul_path(x, impl) else 'conv'

_TRITON_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)

def _matmul_path(x, impl):
    """Whether upfirdn2d (and filtered_lrelu) run as banded matrix products: on CUDA unless impl='ref'
    (impl='triton' falls back to them where a Triton kernel does not apply).

    Module-level so that the tests can run the CUDA formulation on CPU.
    """
    return x.is_cuda and impl in ('cuda', 'triton')

#----------------------------------------------------------------------------

def _upfirdn2d(x, f, up, down, pad, flip_filter, gain):
    """upfirdn2d() on parsed arguments: up/down = (y, x), pad = (y0, y1, x0, x1)."""
    if f is None and up == (1, 1) and down == (1, 1):
        x = _pad(x, pad)
        return x * gain if gain != 1 else x
    if f is None:
        f = torch.ones([1, 1], dtype=torch.float32, device=x.device)
    f = f.to(device=x.device, dtype=x.dtype) * (gain ** (f.ndim / 2))
    if f.ndim == 2:
        return _fir_pass(x, f, up, down, pad, flip_filter)
    x = _fir_pass(x, f[None, :], (1, up[1]), (1, down[1]), (0, 0) + pad[2:], flip_filter)
    x = _fir_pass(x, f[:, None], (up[0], 1), (down[0], 1), pad[:2] + (0, 0), flip_filter)
    return x

#----------------------------------------------------------------------------

def _upfirdn2d_matmul(x, f, up, down, pad, flip_filter, gain):
    """_upfirdn2d() as one banded matrix product per axis (tensor cores, no depthwise convolution).

    Output sample j of an axis depends on input i through one tap, so the whole 1-D pass (zero insertion,
    padding, FIR, decimation) is x @ M with a banded M [L_in, L_out] built from the filter (_band_matrix).
    A 2-D filter of rank 1 is split into its two 1-D factors; one of higher rank (StyleGAN3-R's radial
    filters) runs through the convolutions of _upfirdn2d(). Keeps a channels-last layout without copies.
    """
    if f is None and up == (1, 1) and down == (1, 1):
        return _upfirdn2d(x, f, up, down, pad, flip_filter, gain)
    cache = _filter_cache(f)
    if 'factors' not in cache:
        cache['factors'] = _separable_factors(f)
    if cache['factors'] is None:
        return _upfirdn2d(x, f, up, down, pad, flip_filter, gain)
    N, C, H, W = x.shape
    channels_last = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    my = _band_matrix(cache, 0, H, up[0], down[0], pad[:2], flip_filter, gain, x, transposed=True) # [Ho, H]
    mx = _band_matrix(cache, 1, W, up[1], down[1], pad[2:], flip_filter, gain, x, transposed=channels_last)
    Ho, Wo = my.shape[0], mx.shape[0 if channels_last else 1]
    # The last product writes straight into a fresh tensor in x's layout (a view of the product would
    # need a copy to become a tensor of its own, which callers may modify in place).
    y = torch.empty([N, C, Ho, Wo], dtype=x.dtype, device=x.device, memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    if channels_last:
        t = x.permute(0, 2, 3, 1).reshape(N * H, W, C)             # [N*H, W, C], no copy
        t = _rows_product(mx, t)                                    # [N*H, Wo, C]
        _rows_product(my, t.reshape(N, H, Wo * C), out=y.permute(0, 2, 3, 1).view(N, Ho, Wo * C))
    else:
        t = torch.matmul(x.reshape(N * C * H, W), mx)               # [N*C*H, Wo]
        _rows_product(my, t.reshape(N * C, H, Wo), out=y.view(N * C, Ho, Wo))
    return y                                                        # [N, C, Ho, Wo]

#----------------------------------------------------------------------------

def _upfirdn2d_triton(x, f, up, down, pad, flip_filter, gain):
    """_upfirdn2d() as Triton kernel passes: one 2-D pass that reads x once and writes y once, or, where
    that would take more than _DIRECT_TAPS taps per output sample for a separable filter (long filters),
    a horizontal and a vertical 1-D pass. The taps are built on the device and cached with the filter.
    """
    from . import upfirdn2d_triton
    cache = _filter_cache(f)
    fh, fw = (1, 1) if f is None else (f.shape[0], f.shape[-1])
    direct = -(-fh // up[0]) * -(-fw // up[1]) <= _DIRECT_TAPS
    if not direct and 'factors' not in cache:
        cache['factors'] = _separable_factors(f)
    if direct or cache['factors'] is None:
        taps = _correlation_taps(cache, 'direct', f, flip_filter, gain, x)
        return upfirdn2d_triton.fir_pass(x, taps, up, down, pad)
    taps_x = _correlation_taps(cache, 'x', f, flip_filter, 1, x)
    taps_y = _correlation_taps(cache, 'y', f, flip_filter, gain, x)
    x = upfirdn2d_triton.fir_pass(x, taps_x, (1, up[1]), (1, down[1]), (0, 0) + pad[2:])
    return upfirdn2d_triton.fir_pass(x, taps_y, (up[0], 1), (down[0], 1), pad[:2] + (0, 0))

_DIRECT_TAPS = 16 # StyleGAN2's 4x4 filter at down 2 takes 16.

def _correlation_taps(cache, kind, f, flip_filter, gain, x):
    """The [kh, kw] correlation kernel of the filter ('direct'), or of one of its 1-D factors ('x': [1, kw],
    'y': [kh, 1]): f reversed unless flip_filter, times gain, in float32 (float64 for a float64 x)."""
    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    key = ('taps', kind, flip_filter, gain, dtype, x.device)
    if key not in cache:
        if kind == 'direct':
            t = torch.ones([1, 1], dtype=torch.float64, device=x.device) if f is None else f.to(x.device, torch.float64)
            t = torch.outer(t, t) if t.ndim == 1 else t
        else:
            factor = cache['factors'][0 if kind == 'y' else 1].to(x.device)
            t = factor[:, None] if kind == 'y' else factor[None, :]
        t = t if flip_filter else t.flip([0, 1])
        cache[key] = (t * gain).to(dtype).contiguous()
    return cache[key]

#----------------------------------------------------------------------------

def _band_matrix(cache, axis, L_in, up, down, pad, flip_filter, gain, x, transposed):
    """The banded matrix M [L_in, L_out] (or M^T if transposed) of one axis's 1-D pass, in x's dtype.

    Output j takes input i through tap t = i*up + pad0 - j*down of the correlation kernel (the filter
    reversed unless flip_filter); other entries are zero. The vertical pass carries the gain. Built on
    the device by one gather from the filter and cached with it: a call makes no host-device transfer.
    """
    key = (axis, L_in, up, down, pad, flip_filter, gain if axis == 0 else 1, x.dtype, x.device, transposed)
    if key not in cache:
        f1 = cache['factors'][axis]
        k = f1.numel()
        L_out = max((L_in * up + pad[0] + pad[1] - k) // down + 1, 0)
        t = torch.arange(L_in)[:, None] * up + pad[0] - torch.arange(L_out)[None, :] * down # [L_in, L_out]
        index = torch.where((t >= 0) & (t < k), t if flip_filter else k - 1 - t, torch.full_like(t, k)) # k: an appended zero
        index = index.t().contiguous() if transposed else index
        taps = F.pad(f1.to(x.device, torch.float64) * (gain if axis == 0 else 1), [0, 1])
        cache[key] = taps[index.to(x.device)].to(x.dtype)
    return cache[key]

def _rows_product(m, t, out=None):
    """m [L_out, L_in] times each [L_in, R] of t [B, L_in, R]: a fresh [B, L_out, R] (bmm; matmul may return a transposed view)."""
    return torch.bmm(m.expand(t.shape[0], -1, -1), t, out=out)

#----------------------------------------------------------------------------

def _separable_factors(f):
    """(fy, fx) float64 with f = outer(fy, fx), or None for a 2-D filter of rank > 1. One host sync."""
    if f is None:
        return torch.ones([1], dtype=torch.float64), torch.ones([1], dtype=torch.float64)
    f = f.double()
    if f.ndim == 1:
        return f, f
    fy, fx = f.sum(1), f.sum(0) / f.sum()  # Exact for f = outer(u, v): fy = u * sum(v), fx = v / sum(v).
    rank1 = bool((torch.outer(fy, fx) - f).abs().max() <= 1e-6 * f.abs().max())
    return (fy, fx) if rank1 else None

#----------------------------------------------------------------------------

_filter_caches = {} # id(f) -> (weak reference to f, f._version, {what was derived from f: value})

def _filter_cache(f):
    """A dict of values derived from the filter tensor f (None included), kept while f lives unmodified."""
    version = None if f is None or f.is_inference() else f._version
    entry = _filter_caches.get(id(f))
    if entry is None or entry[0]() is not f or entry[1] != version:
        forget = lambda ref, key=id(f): _filter_caches.pop(key) if _filter_caches.get(key, [None])[0] is ref else None
        ref = (lambda: None) if f is None else weakref.ref(f, forget)
        entry = (ref, version, {})
        _filter_caches[id(f)] = entry
    return entry[2]

#----------------------------------------------------------------------------

def _fast_layout(x, channels_last=True):
    """Return x in the layout/dtype the depthwise convolutions are fastest in, and a function that
    converts a result back to x's layout and dtype.

    On CPU that is float32 (oneDNN has no fast half-precision kernels), channels-last if requested:
    oneDNN runs depthwise convolutions on channels-last data several times faster. On CUDA the input
    is used as is.
    """
    if x.is_cuda:
        return x, (lambda y: y)
    dtype = x.dtype
    keep_layout = not channels_last or (x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous())
    def restore(y):
        y = y.to(dtype)
        return y if keep_layout else _ChannelsLastToContiguous.apply(y)
    if dtype in (torch.float16, torch.bfloat16):
        x = x.float()
    return (x.contiguous(memory_format=torch.channels_last) if channels_last else x), restore

#----------------------------------------------------------------------------

class _ChannelsLastToContiguous(torch.autograd.Function):
    """Channels-last -> contiguous copy as one 2-D blocked transpose [H*W, C] -> [C, H*W] per sample.

    PyTorch's generic strided copy takes several times longer for this direction on CPU. An absent
    incoming gradient stays absent.
    """

    @staticmethod
    def forward(ctx, x):
        ctx.set_materialize_grads(False)
        N, C, H, W = x.shape
        if C < 8 or not x.is_contiguous(memory_format=torch.channels_last):
            return x.contiguous()
        y = torch.empty([N, C, H, W], dtype=x.dtype, device=x.device)
        for n in range(N):
            y[n].view(C, H * W).copy_(x[n].permute(1, 2, 0).reshape(H * W, C).t())
        return y

    @staticmethod
    def backward(ctx, dy):
        return dy.contiguous(memory_format=torch.channels_last) if dy is not None else None

#----------------------------------------------------------------------------

def _fir_pass(x, f, up, down, pad, flip_filter):
    """One depthwise FIR stage with kernel f [kh, kw] (x's dtype); up/down = (y, x), pad = (y0, y1, x0, x1)."""
    C = x.shape[1]
    kh, kw = f.shape
    if up == (1, 1):
        # Correlation form of the kernel; a strided convolution computes only the kept samples. Symmetric
        # zero padding is the convolution's own (no padded copy of x).
        w = f if flip_filter else f.flip([0, 1])
        symmetric = pad[0] == pad[1] >= 0 and pad[2] == pad[3] >= 0
        x = x if symmetric else _pad(x, pad)
        return F.conv2d(x, w[None, None].expand(C, 1, kh, kw), stride=down, padding=(pad[0], pad[2]) if symmetric else 0, groups=C)

    # Transposed convolution = zero insertion + full convolution with the kernel in convolution form.
    # Full output index o corresponds to output index j = o - (k - 1 - p0); it ends `up - p1 - 1` early
    # relative to the padded image, hence crop c0 = k - 1 - p0 at the start and c1 = k - up - p1 at the end.
    w = f.flip([0, 1]) if flip_filter else f
    cy0, cy1 = kh - 1 - pad[0], kh - up[0] - pad[1]
    cx0, cx1 = kw - 1 - pad[2], kw - up[1] - pad[3]
    ty, tx = max(min(cy0, cy1), 0), max(min(cx0, cx1), 0)
    x = F.conv_transpose2d(x, w[None, None].expand(C, 1, kh, kw), stride=up, padding=(ty, tx), groups=C)
    x = _pad(x, (ty - cy0, ty - cy1, tx - cx0, tx - cx1))
    if down != (1, 1):
        x = x[:, :, ::down[0], ::down[1]]
    return x

#----------------------------------------------------------------------------

def _pad(x, pad):
    """Zero-pad (negative = crop) the last two dims by pad = (y0, y1, x0, x1)."""
    if any(pad):
        x = F.pad(x, [pad[2], pad[3], pad[0], pad[1]])
    return x

#----------------------------------------------------------------------------

def _parse_scaling(scaling):
    """int or [sx, sy] -> (sx, sy), each an integer >= 1."""
    if isinstance(scaling, numbers.Integral):
        scaling = [scaling, scaling]
    if isinstance(scaling, np.ndarray):
        scaling = scaling.tolist()
    if not isinstance(scaling, (list, tuple)) or len(scaling) != 2 or not all(isinstance(s, numbers.Integral) and s >= 1 for s in scaling):
        raise ValueError(f'Scaling factor must be an int >= 1 or [sx, sy], got {scaling!r}')
    return int(scaling[0]), int(scaling[1])

#----------------------------------------------------------------------------

def _parse_padding(padding):
    """int, [px, py] or [x0, x1, y0, y1] -> (x0, x1, y0, y1) Python ints."""
    if isinstance(padding, numbers.Integral):
        padding = [padding, padding]
    if isinstance(padding, np.ndarray):
        padding = padding.tolist()
    if not isinstance(padding, (list, tuple)) or len(padding) not in (2, 4) or not all(isinstance(p, numbers.Integral) for p in padding):
        raise ValueError(f'Padding must be an int, [px, py] or [x0, x1, y0, y1], got {padding!r}')
    if len(padding) == 2:
        padding = [padding[0], padding[0], padding[1], padding[1]]
    return tuple(int(p) for p in padding)

#----------------------------------------------------------------------------

def _get_filter_size(f):
    """(fw, fh) of a filter prepared by `setup_filter()`; None counts as 1x1."""
    if f is None:
        return 1, 1
    if not isinstance(f, torch.Tensor) or f.ndim not in (1, 2):
        raise ValueError('Filter must be a 1-D or 2-D tensor or None')
    return int(f.shape[-1]), int(f.shape[0])

#----------------------------------------------------------------------------
