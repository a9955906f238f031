"""Equivariance metrics EQ-T, EQ-T_frac and EQ-R of "Alias-Free Generative Adversarial Networks" (appendix E).

Coordinates follow SynthesisInput: the image spans [-0.5, 0.5] in x (right) and y (down), so a
translation of t moves content by t*W pixels. The generator is transformed through
`G.synthesis.input.transform` (the inverse of the desired output transform); the reference is the
untransformed image transformed by band-limited resampling. PSNR uses the dynamic range 2 of [-1, 1].
"""

import copy
import numpy as np
import torch
from torch_utils.ops import upfirdn2d
from . import metric_utils

#----------------------------------------------------------------------------

def sinc(x):
    """Normalised sinc, sin(pi x) / (pi x)."""
    y = (x * np.pi).abs()
    z = torch.sin(y) / y.clamp(1e-30, float('inf'))
    return torch.where(y < 1e-30, torch.ones_like(x), z)

#----------------------------------------------------------------------------

def lanczos_window(x, a):
    """Lanczos window sinc(x/a) on |x| < a, zero outside."""
    x = x.abs() / a
    return torch.where(x < 1, sinc(x), torch.zeros_like(x))

#----------------------------------------------------------------------------

def jinc(x, cutoff):
    """2-D ideal low-pass impulse response of radius `cutoff`, up to scale: J1(2 pi cutoff r) / r (cutoff pi at r = 0)."""
    y = (2 * np.pi * cutoff) * x.abs()
    z = torch.special.bessel_j1(y) / x.abs().clamp(1e-30, float('inf'))
    return torch.where(y < 1e-30, torch.full_like(x, np.pi * cutoff), z)

#----------------------------------------------------------------------------

def translation_matrix(tx, ty, device=None):
    """3x3 homogeneous translation by (tx, ty)."""
    m = torch.eye(3, device=device)
    m[0, 2] = float(tx)
    m[1, 2] = float(ty)
    return m

#----------------------------------------------------------------------------

def rotation_matrix(angle, device=None):
    """3x3 homogeneous rotation by `angle` radians (from +x towards +y)."""
    angle = torch.as_tensor(angle, dtype=torch.float32, device=device)
    m = torch.eye(3, device=device)
    m[0, 0] = angle.cos()
    m[0, 1] = -angle.sin()
    m[1, 0] = angle.sin()
    m[1, 1] = angle.cos()
    return m

#----------------------------------------------------------------------------

def apply_integer_translation(x, tx, ty):
    """Shift x [N, C, H, W] by (round(tx*W), round(ty*H)) pixels; returns (image, mask of defined pixels)."""
    _N, _C, H, W = x.shape
    dx = int(np.rint(float(tx) * W))
    dy = int(np.rint(float(ty) * H))
    y = torch.zeros_like(x)
    m = torch.zeros_like(x)
    if abs(dx) < W and abs(dy) < H:
        dst = (slice(None), slice(None), slice(max(dy, 0), H + min(dy, 0)), slice(max(dx, 0), W + min(dx, 0)))
        src = (slice(None), slice(None), slice(max(-dy, 0), H + min(-dy, 0)), slice(max(-dx, 0), W + min(-dx, 0)))
        y[dst] = x[src]
        m[dst] = 1
    return y, m

#----------------------------------------------------------------------------

def apply_fractional_translation(x, tx, ty, a=3):
    """Shift x by (tx*W, ty*H) pixels with Lanczos-a interpolation; returns (image, mask of pixels whose
    2a x 2a support lies inside x).

    y[p] = sum_k x[p - i - k] L(k - f) over k = 1-a .. a, with i the integer and f the fractional part of
    the shift; the taps are normalised to unit sum so the shift preserves the mean exactly.
    """
    _N, _C, H, W = x.shape
    taps = torch.arange(2 * a, dtype=torch.float64) - (a - 1) # k = 1-a .. a
    def shift_filter(s):
        i = int(np.floor(s))
        f = sinc(taps - (s - i)) * lanczos_window(taps - (s - i), a)
        return i, f / f.sum()
    ix, fx = shift_filter(float(tx) * W)
    iy, fy = shift_filter(float(ty) * H)

    # Padding/cropping realises the integer part; the [2a, 2a] filter the fractional part (see docstring).
    f = torch.outer(fy, fx).to(device=x.device, dtype=torch.float32)
    y = upfirdn2d.upfirdn2d(x, f, padding=[ix + a, a - 1 - ix, iy + a, a - 1 - iy])
    m = torch.zeros_like(x)
    m[:, :, max(iy + a, 0) : min(H + iy - a + 1, H), max(ix + a, 0) : min(W + ix - a + 1, W)] = 1
    return y, m

#----------------------------------------------------------------------------

def construct_affine_bandlimit_filter(mat, a=3, up=4, cutoff=0.5):
    """Low-pass for an image oversampled `up` times, as seen after the affine transform `mat`.

    In the source frame it is a jinc of radius `cutoff` (cycles per pixel) times a separable Lanczos-a
    window; here it is expressed on the destination grid (taps at 1/up pixel), unit DC gain.
    Returns [2R+1, 2R+1] float32 on mat's device.
    """
    lin = mat[:2, :2].to(torch.float64)
    reach = (lin.abs() @ torch.full([2], float(a), dtype=torch.float64, device=mat.device)).max() # window box -> destination
    R = int(np.ceil(float(reach) * up))
    taps = torch.arange(-R, R + 1, dtype=torch.float64, device=mat.device) / up
    py, px = torch.meshgrid(taps, taps, indexing='ij') # destination offsets in pixels, [2R+1, 2R+1]
    inv = torch.linalg.inv(lin)
    qx = inv[0, 0] * px + inv[0, 1] * py # source-frame offsets
    qy = inv[1, 0] * px + inv[1, 1] * py
    f = jinc(torch.hypot(qx, qy), cutoff) * lanczos_window(qx, a) * lanczos_window(qy, a)
    return (f / f.sum()).to(torch.float32)

#----------------------------------------------------------------------------

def _lanczos_upsample(x, a, up):
    """Lanczos-a interpolation onto a grid `up` times denser whose every up-th sample is an input pixel:
    [N, C, H, W] -> [N, C, up*(H-1)+1, up*(W-1)+1]."""
    taps = torch.arange(1 - a * up, a * up, dtype=torch.float64) / up # 2*a*up-1 taps, centred
    f = sinc(taps) * lanczos_window(taps, a)
    phase = torch.arange(taps.numel()) % up
    f = f / torch.zeros(up, dtype=torch.float64).index_add_(0, phase, f)[phase] # each polyphase component sums to 1
    f = f.to(device=x.device, dtype=torch.float32)
    return upfirdn2d.upfirdn2d(x, f, up=up, padding=[a * up - 1, a * up - up] * 2)

#----------------------------------------------------------------------------

def _lowpass_decimate(y, f, up):
    """Filter the oversampled image with the odd-sized 2-D f and keep the samples at the original pixels."""
    R = f.shape[0] // 2
    return upfirdn2d.upfirdn2d(y, f, down=up, padding=[R, R, R, R])

#----------------------------------------------------------------------------

def _pixel_coords(H, W, device):
    """Pixel centres in pixel units relative to the image centre: (x [1, W], y [H, 1])."""
    x = torch.arange(W, dtype=torch.float32, device=device) - (W - 1) / 2
    y = torch.arange(H, dtype=torch.float32, device=device) - (H - 1) / 2
    return x.unsqueeze(0), y.unsqueeze(1)

#----------------------------------------------------------------------------

def _inside(x, y, H, W, margin):
    """Mask [H, W] of points (x, y) in centred pixel units that are at least `margin` pixels inside the image."""
    return (x.abs() <= (W - 1) / 2 - margin) & (y.abs() <= (H - 1) / 2 - margin)

#----------------------------------------------------------------------------

def apply_affine_transformation(x, mat, a=3, up=4, cutoff=0.5):
    """Band-limited affine resampling: output(p) = x(mat^-1 p), in SynthesisInput coordinates.

    x is Lanczos-upsampled `up` times, warped on the dense grid (bicubic, accurate there since the
    dense signal is smooth), then low-passed with construct_affine_bandlimit_filter(mat) and decimated.
    Returns (image, mask of pixels whose whole support lies inside x).
    """
    N, C, H, W = x.shape
    scale = torch.tensor([W, H, 1], dtype=torch.float32, device=x.device)
    mat_px = mat.to(x.device, torch.float32) * scale.unsqueeze(1) / scale.unsqueeze(0) # same map, in pixel units
    inv_px = torch.linalg.inv(mat_px)

    # Dense destination grid -> source positions -> grid_sample coordinates (align_corners=True over the dense image).
    y = _lanczos_upsample(x, a, up)
    gx = torch.arange(y.shape[3], dtype=torch.float32, device=x.device) / up - (W - 1) / 2
    gy = torch.arange(y.shape[2], dtype=torch.float32, device=x.device) / up - (H - 1) / 2
    gy, gx = torch.meshgrid(gy, gx, indexing='ij')
    sx = inv_px[0, 0] * gx + inv_px[0, 1] * gy + inv_px[0, 2]
    sy = inv_px[1, 0] * gx + inv_px[1, 1] * gy + inv_px[1, 2]
    grid = torch.stack([sx * (2 / (W - 1)), sy * (2 / (H - 1))], dim=2).unsqueeze(0).expand(N, -1, -1, -1) # [N, H', W', 2]
    y = torch.nn.functional.grid_sample(y, grid, mode='bicubic', padding_mode='zeros', align_corners=True)
    y = _lowpass_decimate(y, construct_affine_bandlimit_filter(mat_px, a=a, up=up, cutoff=cutoff), up)

    # Defined where the source point, with the upsampling and filter support around it, is inside x.
    px, py = _pixel_coords(H, W, x.device)
    sx = inv_px[0, 0] * px + inv_px[0, 1] * py + inv_px[0, 2]
    sy = inv_px[1, 0] * px + inv_px[1, 1] * py + inv_px[1, 2]
    m = _inside(sx, sy, H, W, margin=2 * a + 1).to(x.dtype)
    return y, m.expand_as(x).contiguous()

#----------------------------------------------------------------------------

def apply_fractional_rotation(x, angle, a=3, up=4, cutoff=0.5):
    """Band-limited rotation of x by `angle` radians about the image centre; returns (image, mask)."""
    return apply_affine_transformation(x, rotation_matrix(angle, device=x.device), a=a, up=up, cutoff=cutoff)

#----------------------------------------------------------------------------

def apply_fractional_pseudo_rotation(x, angle, a=3, up=4, cutoff=0.5):
    """The band limit of apply_fractional_rotation() without the rotation itself.

    An image that is already rotated (the generator's output) is upsampled and filtered with the same
    rotated filter, so that it matches the rotated reference up to the generator's own error.
    Returns (image, mask of pixels whose filter support lies inside x).
    """
    _N, _C, H, W = x.shape
    y = _lanczos_upsample(x, a, up)
    f = construct_affine_bandlimit_filter(rotation_matrix(angle, device=x.device), a=a, up=up, cutoff=cutoff)
    y = _lowpass_decimate(y, f, up)
    px, py = _pixel_coords(H, W, x.device)
    m = _inside(px, py, H, W, margin=2 * a + 1).to(x.dtype)
    return y, m.expand_as(x).contiguous()

#----------------------------------------------------------------------------

def compute_equivariance_metrics(opts, num_samples, batch_size, translate_max=0.125, rotate_max=1, compute_eqt_int=False, compute_eqt_frac=False, compute_eqr=False):
    """PSNR (dB) between transformed generator outputs and transformed references, over num_samples samples.

    Returns the requested metrics in the order EQ-T, EQ-T_frac, EQ-R: a float when one was requested,
    else a tuple of floats. This is the upstream contract, which metric_main and callers written for
    NVIDIA's release rely on. Translations are U(-translate_max, translate_max) image widths per axis,
    rotations U(-pi, pi) * rotate_max; one transform per batch.
    """
    G = copy.deepcopy(opts.G).eval().requires_grad_(False).to(opts.device)
    if not hasattr(G.synthesis, 'input') or not hasattr(G.synthesis.input, 'transform'):
        raise ValueError('Equivariance metrics need a generator with G.synthesis.input.transform (StyleGAN3)')
    synthesis_kwargs = dict(dict(noise_mode='const', force_fp32=True), **opts.G_kwargs)
    flags = [compute_eqt_int, compute_eqt_frac, compute_eqr]
    if not any(flags):
        raise ValueError('compute_equivariance_metrics: no metric requested')
    transform = G.synthesis.input.transform
    identity = torch.eye(3, device=opts.device)

    c_iter = metric_utils.iterate_random_labels(opts=opts, batch_size=batch_size) # Dataset labels if G is conditional.

    # Per metric: [sum of masked squared errors, number of masked elements], float64.
    sums = torch.zeros([3, 2], dtype=torch.float64, device=opts.device)
    def accumulate(idx, out, ref, mask):
        sums[idx, 0] += ((out - ref).square() * mask).sum().double()
        sums[idx, 1] += mask.sum().double()

    gen = torch.Generator(device=opts.device)
    gen.manual_seed(123 + opts.rank)
    progress = opts.progress.sub(tag='eq sampling', num_items=num_samples) if opts.progress is not None else None
    with torch.no_grad():
        for batch_start in range(0, num_samples, batch_size * opts.num_gpus):
            if progress is not None:
                progress.update(batch_start)
            z = torch.randn([batch_size, G.z_dim], generator=gen, device=opts.device)
            ws = G.mapping(z=z, c=next(c_iter))
            transform.copy_(identity)
            orig = G.synthesis(ws, **synthesis_kwargs)

            # Integer translation (EQ-T).
            if compute_eqt_int:
                t = (torch.rand([2], generator=gen, device=opts.device) * 2 - 1) * translate_max
                t = (t * G.img_resolution).round() / G.img_resolution
                transform.copy_(translation_matrix(-t[0], -t[1], device=opts.device))
                out = G.synthesis(ws, **synthesis_kwargs)
                ref, mask = apply_integer_translation(orig, t[0], t[1])
                accumulate(0, out, ref, mask)

            # Fractional translation (EQ-T_frac).
            if compute_eqt_frac:
                t = (torch.rand([2], generator=gen, device=opts.device) * 2 - 1) * translate_max
                transform.copy_(translation_matrix(-t[0], -t[1], device=opts.device))
                out = G.synthesis(ws, **synthesis_kwargs)
                ref, mask = apply_fractional_translation(orig, t[0], t[1])
                accumulate(1, out, ref, mask)

            # Rotation (EQ-R).
            if compute_eqr:
                angle = (torch.rand([], generator=gen, device=opts.device) * 2 - 1) * (rotate_max * np.pi)
                transform.copy_(rotation_matrix(-angle, device=opts.device))
                out = G.synthesis(ws, **synthesis_kwargs)
                ref, ref_mask = apply_fractional_rotation(orig, angle)
                pseudo, pseudo_mask = apply_fractional_pseudo_rotation(out, angle)
                accumulate(2, pseudo, ref, ref_mask * pseudo_mask)

    # Reduce across GPUs and convert to PSNR.
    if opts.num_gpus > 1:
        torch.distributed.all_reduce(sums)
    if progress is not None:
        progress.update(num_samples)
    mse = (sums[:, 0] / sums[:, 1]).cpu().numpy()
    psnrs = [float(20 * np.log10(2) - 10 * np.log10(mse[idx])) for idx in range(3) if flags[idx]]
    return psnrs[0] if len(psnrs) == 1 else tuple(psnrs)

#----------------------------------------------------------------------------
