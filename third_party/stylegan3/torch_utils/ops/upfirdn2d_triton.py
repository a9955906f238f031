"""upfirdn2d's Triton kernel: one pass of zero insertion, padding, 2-D FIR filtering and decimation.

Imported only where `triton_select.use_triton()` says a Triton kernel runs (it imports Triton).
"""

import torch
import triton
import triton.language as tl

from . import triton_select

#----------------------------------------------------------------------------

# Tile configurations a GPU sweep measures (benchmarks time `run_case()` with each), and the one taken
# where `triton_configs.json` has no entry for the problem.
CANDIDATE_CONFIGS = [dict(BLOCK=block, num_warps=warps) for block in (256, 512, 1024, 2048) for warps in (2, 4, 8)]
DEFAULT_CONFIG = dict(BLOCK=1024, num_warps=4)

#----------------------------------------------------------------------------

def fir_pass(x, taps, up, down, pad, config=None):
    """y[n, c, j, l] = sum over taps (ty, tx) of taps[ty, tx] * x[n, c, iy, ix], where ty = iy*up_y + pad_y0 - j*down_y
    (tx likewise): upfirdn2d with `taps` as the correlation kernel (gain included, flip resolved).

    x: [N, C, H, W], any strides; taps: [kh, kw] float32 (float64 for a float64 x) on x's device; up/down
    = (y, x); pad = (y0, y1, x0, x1). Accumulates in taps' dtype; returns a fresh tensor in x's dtype,
    channels-last if x is.
    """
    N, C, H, W = x.shape
    kh, kw = taps.shape
    Ho = max((H * up[0] + pad[0] + pad[1] - kh) // down[0] + 1, 0)
    Wo = max((W * up[1] + pad[2] + pad[3] - kw) // down[1] + 1, 0)
    channels_last = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    y = torch.empty([N, C, Ho, Wo], dtype=x.dtype, device=x.device, memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    if y.numel() == 0:
        return y
    if config is None:
        config = triton_select.tile_config('upfirdn2d', config_key(x, taps, up, down), DEFAULT_CONFIG, x.device)
    block, num_warps = config['BLOCK'], config['num_warps']
    _fir_kernel[(triton.cdiv(y.numel(), block),)](
        x, taps, y, y.numel(), C, H, W, Ho, Wo, *x.stride(), pad[0], pad[2],
        UPY=up[0], UPX=up[1], DOWNY=down[0], DOWNX=down[1], KH=kh, KW=kw,
        TY=-(-kh // up[0]), TX=-(-kw // up[1]), CHANNELS_LAST=channels_last, BLOCK=block, num_warps=num_warps)
    return y

def config_key(x, taps, up, down):
    """The problem class a tile configuration is measured for: filter size, rates, dtype, layout."""
    layout = 'cl' if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous() else 'nchw'
    return f'{taps.shape[0]}x{taps.shape[1]}-up{up[0]}x{up[1]}-down{down[0]}x{down[1]}-{str(x.dtype)[6:]}-{layout}'

#----------------------------------------------------------------------------

def run_case(N, C, H, W, taps, up, down, pad, dtype, channels_last, config, device='cuda'):
    """One problem of the GPU sweep with tile `config`: a zero-argument function that runs the kernel once."""
    x = torch.randn([N, C, H, W], dtype=dtype, device=device)
    x = x.contiguous(memory_format=torch.channels_last) if channels_last else x
    taps = torch.as_tensor(taps, dtype=torch.float32, device=device)
    return lambda: fir_pass(x, taps, up, down, pad, config)

#----------------------------------------------------------------------------

@triton.jit
def _fir_kernel(x_ptr, w_ptr, y_ptr, total, C, H, W, Ho, Wo, sxn, sxc, sxh, sxw, py0, px0,
                UPY: tl.constexpr, UPX: tl.constexpr, DOWNY: tl.constexpr, DOWNX: tl.constexpr,
                KH: tl.constexpr, KW: tl.constexpr, TY: tl.constexpr, TX: tl.constexpr,
                CHANNELS_LAST: tl.constexpr, BLOCK: tl.constexpr):
    # One program: BLOCK consecutive outputs in y's memory order (coalesced stores in either layout).
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    live = offs < total
    if CHANNELS_LAST: # y: [N, Ho, Wo, C] in memory
        c = offs % C
        l = (offs // C) % Wo
        j = (offs // (C * Wo)) % Ho
        n = offs // (C * Wo * Ho)
    else:             # y: [N, C, Ho, Wo] in memory
        l = offs % Wo
        j = (offs // Wo) % Ho
        c = (offs // (Wo * Ho)) % C
        n = offs // (Wo * Ho * C)
    base = n * sxn + c * sxc

    # Polyphase: output j meets input i through tap t = i*UP + pad0 - j*DOWN, so only the taps with
    # t = t0 (mod UP) land on input samples; t0 is the first of them, TY (TX) taps in all.
    qy = py0 - j * DOWNY
    qx = px0 - l * DOWNX
    ty0 = (qy % UPY + UPY) % UPY # Triton's % truncates; this is the non-negative residue.
    tx0 = (qx % UPX + UPX) % UPX
    acc = tl.full([BLOCK], 0, w_ptr.dtype.element_ty) # (Not tl.zeros, a @jit function that the interpreter runs
                                                      # only if TRITON_INTERPRET was set before Triton's import.)
    for my in tl.static_range(TY):
        ty = ty0 + my * UPY
        iy = (ty - qy) // UPY # Exact division.
        row_ok = live & (ty < KH) & (iy >= 0) & (iy < H)
        for mx in tl.static_range(TX):
            tx = tx0 + mx * UPX
            ix = (tx - qx) // UPX
            ok = row_ok & (tx < KW) & (ix >= 0) & (ix < W)
            w = tl.load(w_ptr + ty * KW + tx, mask=ok, other=0)
            v = tl.load(x_ptr + base + iy * sxh + ix * sxw, mask=ok, other=0)
            acc += w * v.to(acc.dtype)
    tl.store(y_ptr + offs, acc.to(y_ptr.dtype.element_ty), mask=live)

#----------------------------------------------------------------------------
