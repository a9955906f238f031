"""Filtered leaky ReLU of Alias-Free GAN (StyleGAN3) as fused Triton kernels, forward and backward.

One program computes one output tile of a few channels (planes), one after the other. It reads the input tile
(plus the filters' halo) once, and in on-chip memory adds the bias, upsamples, applies leaky ReLU with gain and
the clamp, downsamples and writes the output tile: the upsampled activations never go to memory, as in NVIDIA's kernel (Karras et al.
2021, "Alias-Free Generative Adversarial Networks", appendix D). Each 1-D pass of a separable filter is a
small band product inside the tile (`tl.dot`, tensor cores at fp16), its band matrix built in the kernel from
the 1-D filter by the tap index t = i*up + pad - j*down, once per program for all its planes. For the backward the forward writes one byte per
upsampled sample, the activation's derivative code (0: slope, 1: one, 2: zero), which the fused backward
kernel reads between the transposed band products: dy -> down^T -> times the derivative -> up^T -> dx (the
bias gradient is the sum of dx). The kernels call no Triton library function that is itself a @triton.jit
function (tl.sum, ...): under TRITON_INTERPRET=1 they then run even where Triton was imported before the
variable was set. Separable filters (1-D, or 2-D of rank 1) in float16 and float32 (fp32 accumulation);
`supports()` says which calls these kernels take.

Tile sizes come from `triton_select.tile_config` (kernels 'filtered_lrelu_fwd' and 'filtered_lrelu_bwd',
keyed by `config_key()`), never from autotuning at run time. For a GPU sweep that writes that table,
`CANDIDATE_CONFIGS` lists the tile configurations worth measuring and `run_case(x, b, kwargs, forward_config,
backward_config)` runs `filtered_lrelu(x, b=b, **kwargs)` forward (and backward) with given configurations,
e.g. over the layers of `benchmarks/bench_ops.py`'s `stylegan3_layers()`: time the forward alone per
configuration, then forward + backward per backward configuration with the best forward one. A configuration
whose tiles exceed the GPU's registers or shared memory may fail to compile; a sweep skips it.
"""

import inspect
import torch
import triton
import triton.language as tl

from . import triton_select
from . import upfirdn2d

#----------------------------------------------------------------------------

# Output tile (forward) or input tile (backward) in samples, planes (channels) per program, warps per program.
CANDIDATE_CONFIGS = [dict(BLOCK_H=h, BLOCK_W=w, PLANES=p, num_warps=nw)
                     for h, w in [(8, 8), (8, 16), (16, 16), (16, 32), (27, 27)] for p in (1, 4) for nw in (4, 8)]

_DTYPES = {torch.float16: tl.float16, torch.float32: tl.float32}

#----------------------------------------------------------------------------

def supports(x, fu, fd):
    """Whether these kernels compute filtered_lrelu for x and the filters: float16/32, filters of rank 1."""
    return x.dtype in _DTYPES and x.numel() > 0 and _factors(fu) is not None and _factors(fd) is not None

def config_key(x, fu, fd, up, down):
    """The tile table's key of a call: dtype, rates and tap counts."""
    return f'{str(x.dtype)[6:]}_up{up}_down{down}_fu{_taps_count(fu)}_fd{_taps_count(fd)}'

#----------------------------------------------------------------------------

def forward(x, b, fu, fd, up, down, padding, gain, slope, clamp, flip_filter, write_code, config=None):
    """filtered_lrelu of x [N, C, H, W] with padding (x0, x1, y0, y1) already trimmed to the output.

    Returns y [N, C, Ho, Wo] in x's dtype and memory format, and the derivative code, uint8 [N, C, UH, UW]
    over the upsampled samples (None unless write_code and the activation is not the identity).
    """
    N, C, H, W = x.shape
    px0, px1, py0, py1 = padding
    (kuy, kux), (kdy, kdx) = _taps_count_yx(fu), _taps_count_yx(fd)
    UH, UW = H * up + py0 + py1 - (kuy - 1), W * up + px0 + px1 - (kux - 1)
    Ho, Wo = (UH - kdy) // down + 1, (UW - kdx) // down + 1
    act = slope != 1 or clamp is not None
    y = torch.empty([N, C, Ho, Wo], dtype=x.dtype, device=x.device, memory_format=_memory_format(x))
    code = torch.empty([N, C, UH, UW], dtype=torch.uint8, device=x.device) if write_code and act else None
    config = config or _config('filtered_lrelu_fwd', x, fu, fd, up, down, rate=down, taps=max(kdy, kdx))
    BH, BW = config['BLOCK_H'], config['BLOCK_W']
    # Upsampled samples a tile of outputs reads (at least the tile's own share), and the inputs those read.
    TUH, TUW = max((BH - 1) * down + kdy, BH * down), max((BW - 1) * down + kdx, BW * down)
    TIH, TIW = (TUH + kuy - 2) // up + 1, (TUW + kux - 2) // up + 1
    ay, sy = _ceil_shift(-py0, up)
    ax, sx = _ceil_shift(-px0, up)
    (fuy, fux), (fdy, fdx) = _taps(fu, flip_filter, x.device), _taps(fd, flip_filter, x.device)
    grid = (triton.cdiv(N * C, config['PLANES']), triton.cdiv(Ho, BH), triton.cdiv(Wo, BW))
    if y.numel() > 0:
        _forward_kernel[grid](
            x, x if b is None else b, fuy, fux, fdy, fdx, y, y if code is None else code,
            N * C, C, H, W, Ho, Wo, UH, UW, *x.stride(), *y.stride(),
            py0, px0, ay, sy, ax, sx, float(up * up), float(gain), float(slope), float(0 if clamp is None else clamp),
            KUY=kuy, KUX=kux, KDY=kdy, KDX=kdx, UP=up, DOWN=down, BH=BH, BW=BW, PLANES=config['PLANES'],
            TOH=_tile(BH), TOW=_tile(BW), TUH=_tile(TUH), TUW=_tile(TUW), TIH=_tile(TIH), TIW=_tile(TIW),
            HAS_BIAS=b is not None, ACT=act, CLAMP=clamp is not None, WRITE_CODE=code is not None,
            DTYPE=_DTYPES[x.dtype], num_warps=config['num_warps'])
    return y, code

#----------------------------------------------------------------------------

def backward(dy, code, x, fu, fd, up, down, padding, gain, slope, flip_filter, need_db, config=None):
    """dx [N, C, H, W] (dy's dtype, x's memory format) and db [C] (float32, or None) of forward(x, ...)'s y.

    code: forward()'s derivative code, or None where the activation is the identity (derivative = gain).
    """
    N, C, H, W = x.shape
    _, _, Ho, Wo = dy.shape
    px0, _, py0, _ = padding
    (kuy, kux), (kdy, kdx) = _taps_count_yx(fu), _taps_count_yx(fd)
    UH, UW = (Ho - 1) * down + kdy, (Wo - 1) * down + kdx
    dx = torch.empty([N, C, H, W], dtype=dy.dtype, device=dy.device, memory_format=_memory_format(x))
    config = config or _config('filtered_lrelu_bwd', dy, fu, fd, up, down, rate=up, taps=max(kuy, kux))
    BH, BW = config['BLOCK_H'], config['BLOCK_W']
    # Upsampled samples a tile of inputs feeds, and the outputs those feed.
    TUH, TUW = (BH - 1) * up + kuy, (BW - 1) * up + kux
    TJH, TJW = (TUH + kdy - 2) // down + 1, (TUW + kdx - 2) // down + 1
    ay, sy = _ceil_shift(py0 - kuy - kdy + 2, down)
    ax, sx = _ceil_shift(px0 - kux - kdx + 2, down)
    (fuy, fux), (fdy, fdx) = _taps(fu, flip_filter, dy.device), _taps(fd, flip_filter, dy.device)
    grid = (triton.cdiv(N * C, config['PLANES']), triton.cdiv(H, BH), triton.cdiv(W, BW))
    _backward_kernel[grid](
        dy, dy if code is None else code, fuy, fux, fdy, fdx, dx,
        N * C, C, H, W, Ho, Wo, UH, UW, *dy.stride(), *dx.stride(),
        py0, px0, ay, sy, ax, sx, float(up * up), float(gain), float(slope),
        KUY=kuy, KUX=kux, KDY=kdy, KDX=kdx, UP=up, DOWN=down, BH=BH, BW=BW, PLANES=config['PLANES'],
        TIH=_tile(BH), TIW=_tile(BW), TUH=_tile(TUH), TUW=_tile(TUW), TJH=_tile(TJH), TJW=_tile(TJW),
        HAS_CODE=code is not None, DTYPE=_DTYPES[dy.dtype], num_warps=config['num_warps'])
    return dx, dx.sum([0, 2, 3], dtype=torch.float32) if need_db else None

#----------------------------------------------------------------------------

def run_case(x, b, kwargs, forward_config, backward_config=None):
    """filtered_lrelu(x, b=b, **kwargs) through these kernels with the given tile configurations (entries of
    CANDIDATE_CONFIGS): the forward, and the backward with dy = 1 if backward_config is given. The unit a GPU
    sweep times per layer and configuration. Returns y, or (y, dx, db)."""
    from . import filtered_lrelu
    args = inspect.signature(filtered_lrelu.filtered_lrelu).bind(x, b=b, **kwargs)
    args.apply_defaults()
    a = args.arguments
    padding = filtered_lrelu._trimmed_padding(x.shape, a['fu'], a['fd'], a['up'], a['down'], upfirdn2d._parse_padding(a['padding']))
    common = dict(fu=a['fu'], fd=a['fd'], up=a['up'], down=a['down'], padding=padding, gain=a['gain'], slope=a['slope'], flip_filter=a['flip_filter'])
    y, code = forward(x, b, clamp=a['clamp'], write_code=backward_config is not None, config=forward_config, **common)
    if backward_config is None:
        return y
    dx, db = backward(torch.ones_like(y), code, x, need_db=b is not None, config=backward_config, **common)
    return y, dx, db

#----------------------------------------------------------------------------

@triton.jit
def _forward_kernel(x_ptr, b_ptr, fuy_ptr, fux_ptr, fdy_ptr, fdx_ptr, y_ptr, code_ptr,
                    NC, C, H, W, Ho, Wo, UH, UW, sxn, sxc, sxh, sxw, syn, syc, syh, syw,
                    py0, px0, ay, sy, ax, sx, up_gain, gain, slope, clamp,
                    KUY: tl.constexpr, KUX: tl.constexpr, KDY: tl.constexpr, KDX: tl.constexpr,
                    UP: tl.constexpr, DOWN: tl.constexpr, BH: tl.constexpr, BW: tl.constexpr, PLANES: tl.constexpr,
                    TOH: tl.constexpr, TOW: tl.constexpr, TUH: tl.constexpr, TUW: tl.constexpr,
                    TIH: tl.constexpr, TIW: tl.constexpr, HAS_BIAS: tl.constexpr, ACT: tl.constexpr,
                    CLAMP: tl.constexpr, WRITE_CODE: tl.constexpr, DTYPE: tl.constexpr):
    pid, th, tw = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    oy0, ox0 = th * BH, tw * BW                     # First output of the tile.
    uy0, ux0 = oy0 * DOWN, ox0 * DOWN               # First upsampled sample it reads.
    iy0, ix0 = (uy0 + ay) // UP - sy, (ux0 + ax) // UP - sx # First input those read: ceil((u0 - pad0) / up).
    oy, ox = oy0 + tl.arange(0, TOH), ox0 + tl.arange(0, TOW)
    uy, ux = uy0 + tl.arange(0, TUH), ux0 + tl.arange(0, TUW)
    iy, ix = iy0 + tl.arange(0, TIH), ix0 + tl.arange(0, TIW)

    # Band matrices and offsets of the tile, shared by the program's planes (channels).
    up_x = _band(fux_ptr, ix[:, None] * UP + px0 - ux[None, :], KUX, DTYPE)    # [TIW, TUW]
    up_y = _band(fuy_ptr, iy[None, :] * UP + py0 - uy[:, None], KUY, DTYPE)    # [TUH, TIH]
    down_x = _band(fdx_ptr, ux[:, None] - ox[None, :] * DOWN, KDX, DTYPE)     # [TUW, TOW]
    down_y = _band(fdy_ptr, uy[None, :] - oy[:, None] * DOWN, KDY, DTYPE)     # [TOH, TUH]
    x_mask = ((iy >= 0) & (iy < H))[:, None] & ((ix >= 0) & (ix < W))[None, :] # Zero outside: the padding.
    x_offs = iy[:, None] * sxh + ix[None, :] * sxw
    y_cols = (ox < Wo) & (ox - ox0 < BW)
    y_offs = oy[:, None] * syh + ox[None, :] * syw
    # Each upsampled sample's code is written once, by the tile that owns it (the last tile: its halo too).
    uy_end = tl.where(oy0 + BH >= Ho, UH, uy0 + BH * DOWN)
    code_cols = ux < tl.where(ox0 + BW >= Wo, UW, ux0 + BW * DOWN)
    code_offs = uy[:, None] * UW + ux[None, :]

    for p in range(PLANES):
        nc = pid * PLANES + p
        live = tl.where(nc < NC, 1, 0)      # Planes past the last one read the last one and store nothing.
        ncr = tl.minimum(nc, NC - 1)
        n, c = ncr // C, ncr % C
        v = tl.load(x_ptr + n.to(tl.int64) * sxn + c.to(tl.int64) * sxc + x_offs, mask=x_mask, other=0.0).to(tl.float32)
        if HAS_BIAS:
            v = tl.where(x_mask, v + tl.load(b_ptr + c).to(tl.float32), 0.0)

        # Upsample: [TIH, TIW] -> [TIH, TUW] -> [TUH, TUW]; lrelu(g * v) = g * lrelu(v) for g > 0.
        v = tl.dot(v.to(DTYPE), up_x, input_precision='ieee')
        v = tl.dot(up_y, v.to(DTYPE), input_precision='ieee') * (up_gain * gain)
        if ACT:
            v = tl.where(v > 0, v, v * slope)
            if CLAMP:
                v = tl.minimum(tl.maximum(v, -clamp), clamp)
            if WRITE_CODE:
                code = tl.where(v > 0, 1, 0)
                if CLAMP:
                    code = tl.where(tl.abs(v) >= clamp, 2, code)
                code_mask = (uy < uy_end * live)[:, None] & code_cols[None, :]
                tl.store(code_ptr + ncr.to(tl.int64) * UH * UW + code_offs, code.to(tl.uint8), mask=code_mask)

        # Downsample: [TUH, TUW] -> [TUH, TOW] -> [TOH, TOW].
        v = tl.dot(v.to(DTYPE), down_x, input_precision='ieee')
        v = tl.dot(down_y, v.to(DTYPE), input_precision='ieee')
        y_mask = ((oy < Ho * live) & (oy - oy0 < BH))[:, None] & y_cols[None, :]
        tl.store(y_ptr + n.to(tl.int64) * syn + c.to(tl.int64) * syc + y_offs, v.to(y_ptr.dtype.element_ty), mask=y_mask)

#----------------------------------------------------------------------------

@triton.jit
def _backward_kernel(dy_ptr, code_ptr, fuy_ptr, fux_ptr, fdy_ptr, fdx_ptr, dx_ptr,
                     NC, C, H, W, Ho, Wo, UH, UW, syn, syc, syh, syw, sxn, sxc, sxh, sxw,
                     py0, px0, ay, sy, ax, sx, up_gain, gain, slope,
                     KUY: tl.constexpr, KUX: tl.constexpr, KDY: tl.constexpr, KDX: tl.constexpr,
                     UP: tl.constexpr, DOWN: tl.constexpr, BH: tl.constexpr, BW: tl.constexpr, PLANES: tl.constexpr,
                     TIH: tl.constexpr, TIW: tl.constexpr, TUH: tl.constexpr, TUW: tl.constexpr,
                     TJH: tl.constexpr, TJW: tl.constexpr, HAS_CODE: tl.constexpr, DTYPE: tl.constexpr):
    pid, th, tw = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    iy0, ix0 = th * BH, tw * BW                               # First input of the tile.
    uy0, ux0 = iy0 * UP + py0 - (KUY - 1), ix0 * UP + px0 - (KUX - 1) # First upsampled sample it feeds.
    jy0, jx0 = (iy0 * UP + ay) // DOWN - sy, (ix0 * UP + ax) // DOWN - sx # First output those feed.
    iy, ix = iy0 + tl.arange(0, TIH), ix0 + tl.arange(0, TIW)
    uy, ux = uy0 + tl.arange(0, TUH), ux0 + tl.arange(0, TUW)
    jy, jx = jy0 + tl.arange(0, TJH), jx0 + tl.arange(0, TJW)

    # The forward's band matrices transposed, and offsets of the tile, shared by the program's planes.
    down_x = _band(fdx_ptr, ux[None, :] - jx[:, None] * DOWN, KDX, DTYPE)     # [TJW, TUW]
    down_y = _band(fdy_ptr, uy[:, None] - jy[None, :] * DOWN, KDY, DTYPE)     # [TUH, TJH]
    up_x = _band(fux_ptr, ix[None, :] * UP + px0 - ux[:, None], KUX, DTYPE)    # [TUW, TIW]
    up_y = _band(fuy_ptr, iy[:, None] * UP + py0 - uy[None, :], KUY, DTYPE)    # [TIH, TUH]
    g_mask = ((jy >= 0) & (jy < Ho))[:, None] & ((jx >= 0) & (jx < Wo))[None, :]
    g_offs = jy[:, None] * syh + jx[None, :] * syw
    # Code 2 (derivative zero) outside the upsampled image: nothing flows there.
    u_mask = ((uy >= 0) & (uy < UH))[:, None] & ((ux >= 0) & (ux < UW))[None, :]
    code_offs = uy[:, None] * UW + ux[None, :]
    x_cols = (ix < W) & (ix - ix0 < BW)
    x_offs = iy[:, None] * sxh + ix[None, :] * sxw

    for p in range(PLANES):
        nc = pid * PLANES + p
        live = tl.where(nc < NC, 1, 0)      # Planes past the last one read the last one and store nothing.
        ncr = tl.minimum(nc, NC - 1)
        n, c = ncr // C, ncr % C

        # Incoming gradient, transposed downsampling: [TJH, TJW] -> [TJH, TUW] -> [TUH, TUW].
        g = tl.load(dy_ptr + n.to(tl.int64) * syn + c.to(tl.int64) * syc + g_offs, mask=g_mask, other=0.0)
        g = tl.dot(g.to(DTYPE), down_x, input_precision='ieee')
        g = tl.dot(down_y, g.to(DTYPE), input_precision='ieee') * (gain * up_gain)
        if HAS_CODE: # Times the activation's derivative.
            code = tl.load(code_ptr + ncr.to(tl.int64) * UH * UW + code_offs, mask=u_mask, other=2)
            g = g * tl.where(code == 1, 1.0, tl.where(code == 0, slope, 0.0))

        # Transposed upsampling: [TUH, TUW] -> [TUH, TIW] -> [TIH, TIW].
        g = tl.dot(g.to(DTYPE), up_x, input_precision='ieee')
        g = tl.dot(up_y, g.to(DTYPE), input_precision='ieee')
        x_mask = ((iy < H * live) & (iy - iy0 < BH))[:, None] & x_cols[None, :]
        tl.store(dx_ptr + n.to(tl.int64) * sxn + c.to(tl.int64) * sxc + x_offs, g.to(dx_ptr.dtype.element_ty), mask=x_mask)

#----------------------------------------------------------------------------

@triton.jit
def _band(f_ptr, t, K: tl.constexpr, DTYPE: tl.constexpr):
    """Band matrix of tap indices t into a correlation kernel of K taps: f[t], zero outside [0, K)."""
    return tl.load(f_ptr + t, mask=(t >= 0) & (t < K), other=0.0).to(DTYPE)

#----------------------------------------------------------------------------

def _ceil_shift(offset, rate):
    """(a, s) with ceil((t + offset) / rate) = (t + a) // rate - s and t + a >= 0 for every t >= 0: the
    kernels divide only non-negative integers (Triton and its interpreter round negative quotients apart)."""
    s = max(0, -(offset // rate))
    return offset + s * rate + rate - 1, s

def _tile(size):
    """Power-of-two extent of a tile axis holding `size` samples; at least 16, as tl.dot needs."""
    return max(16, triton.next_power_of_2(size))

def _memory_format(x):
    return torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous() else torch.contiguous_format

def _config(kernel, x, fu, fd, up, down, rate, taps):
    """The committed tile configuration, else square tiles whose upsampled extent stays within 64, on 8 warps
    (compiled for sm90, 4 warps spill registers in the backward of up=4 at float32)."""
    block = 16
    while block > 1 and (block - 1) * rate + taps > 64:
        block //= 2
    return triton_select.tile_config(kernel, config_key(x, fu, fd, up, down), dict(BLOCK_H=block, BLOCK_W=block, PLANES=4, num_warps=8), x.device)

#----------------------------------------------------------------------------

def _factors(f):
    """upfirdn2d's (fy, fx) float64 factors of f, cached with the filter; None for a 2-D filter of rank > 1."""
    cache = upfirdn2d._filter_cache(f)
    if 'factors' not in cache:
        cache['factors'] = upfirdn2d._separable_factors(f)
    return cache['factors']

def _taps(f, flip_filter, device):
    """(ky, kx): f's 1-D factors as correlation kernels (reversed unless flip_filter), float32 on device."""
    cache = upfirdn2d._filter_cache(f)
    key = ('triton_taps', flip_filter, device)
    if key not in cache:
        cache[key] = tuple((k if flip_filter else k.flip(0)).to(device, torch.float32).contiguous() for k in _factors(f))
    return cache[key]

def _taps_count_yx(f):
    fw, fh = upfirdn2d._get_filter_size(f)
    return fh, fw

def _taps_count(f):
    return upfirdn2d._get_filter_size(f)[0]

#----------------------------------------------------------------------------
