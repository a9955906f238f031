"""Equivariance metrics EQ-T, EQ-T_frac and EQ-R of "Alias-Free Generative Adversarial Networks" (appendix E).

Coordinates follow SynthesisInput: the image spans [-0.5, 0.5] in x (right) and y (down), so a
translation of t moves content by t*W pixels. The generator is transformed through
`G.synthesis.input.transform` (the inverse of the desired output transform); the reference is the
untransformed image transformed by band-limited resampling. PSNR uses the dynamic range 2 of [-1, 1].
EQ-R follows the appendix and the upstream exactly (filter, resampling, masks, angle convention), so that
its values compare with published ones.
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

def translation_matrix(tx, ty, device=None):
    """3x3 homogeneous translation by (tx, ty)."""
    m = torch.eye(3, device=device)
    m[0, 2] = float(tx)
    m[1, 2] = float(ty)
    return m

#----------------------------------------------------------------------------

def rotation_matrix(angle, device=None):
    """3x3 homogeneous matrix [[cos, sin, 0], [-sin, cos, 0], [0, 0, 1]] of `angle` radians, the upstream's
    convention: with y pointing down, it turns content counter-clockwise on screen (from +x towards -y)."""
    angle = torch.as_tensor(angle, dtype=torch.float32, device=device)
    m = torch.eye(3, device=angle.device)
    m[0, 0] = angle.cos()
    m[0, 1] = angle.sin()
    m[1, 0] = -angle.sin()
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

def construct_affine_bandlimit_filter(mat, a=3, amax=16, aflt=64, up=4, cutoff_in=1, cutoff_out=1):
    """2-D FIR that band-limits an image in its own frame and in the frame of the affine map `mat` (appendix E).

    The ideal filter is the convolution of a separable sinc (cutoff_in) along the input axes with one
    (cutoff_out) along the axes that `mat` maps them to; it is windowed by the convolution of two Lanczos-a
    windows oriented the same way. Both convolutions are circular, by FFT, on a grid of taps 1/up pixel
    apart reaching aflt pixels each side; the product is cut to amax pixels each side, and each of the
    up x up polyphase components is normalised to 1/up^2, so that interpolation by `up` keeps DC.
    Returns [2*amax*up - 1, 2*amax*up - 1] float32 on mat's device.
    """
    if not a <= amax < aflt:
        raise ValueError(f'construct_affine_bandlimit_filter: need a <= amax < aflt, got {a}, {amax}, {aflt}')
    mat = torch.as_tensor(mat, dtype=torch.float32)
    n = 2 * aflt * up - 1
    taps = torch.fft.ifftshift(torch.arange(n, device=mat.device) - (n - 1) // 2) / up # Offsets in FFT order.
    yi, xi = torch.meshgrid(taps, taps, indexing='ij') # Input frame, [n, n] each.
    xo = mat[0, 0] * xi + mat[0, 1] * yi               # The same points in the output frame.
    yo = mat[1, 0] * xi + mat[1, 1] * yi
    def circular_conv(p, q):
        return torch.fft.ifftn(torch.fft.fftn(p) * torch.fft.fftn(q)).real
    f = circular_conv(sinc(xi * cutoff_in) * sinc(yi * cutoff_in), sinc(xo * cutoff_out) * sinc(yo * cutoff_out))
    w = circular_conv(lanczos_window(xi, a) * lanczos_window(yi, a), lanczos_window(xo, a) * lanczos_window(yo, a))
    c = (aflt - amax) * up
    f = torch.fft.fftshift(f * w)[c:n - c, c:n - c] # Centred, [2*amax*up - 1] squared.
    k = 2 * amax # Taps per polyphase component and axis.
    f = torch.nn.functional.pad(f, [0, 1, 0, 1]).reshape(k, up, k, up) # [tap y, phase y, tap x, phase x]
    f = f / (f.sum(dim=[0, 2], keepdim=True) * up ** 2)
    return f.reshape(k * up, k * up)[:-1, :-1]

#----------------------------------------------------------------------------

def apply_affine_transformation(x, mat, up=4, **filter_kwargs):
    """Band-limited affine resampling of x [N, C, H, W]: output(p) = x(mat^-1 p), in SynthesisInput
    coordinates (a square image spans [-0.5, 0.5]); returns (image, mask of defined pixels).

    x is interpolated `up` times with construct_affine_bandlimit_filter(mat) and sampled bilinearly at
    the transformed pixel centres. The mask is 1 where the sample lies at least the filter's reach inside
    x (a region of the interpolated image, sampled with nearest neighbours).
    """
    N, C, H, W = x.shape
    mat = torch.as_tensor(mat).to(dtype=torch.float32, device=x.device)
    f = construct_affine_bandlimit_filter(mat, up=up, **filter_kwargs)
    p = f.shape[0] // 2
    y = upfirdn2d.upsample2d(x=x, f=f, up=up, padding=p) # [N, C, up * (H + 2p/up), up * (W + 2p/up)]

    # Output pixel centres (grid_sample coordinates of x) -> grid_sample coordinates of y: y extends p/up
    # pixels further on each side, and its centre lies 1/(2 up) pixel left of and above x's.
    theta = torch.linalg.inv(mat)
    theta[:2, 2] *= 2
    theta[0, 2] += 1 / (up * W)
    theta[1, 2] += 1 / (up * H)
    theta[0, :] *= W / (W + 2 * p / up)
    theta[1, :] *= H / (H + 2 * p / up)
    grid = torch.nn.functional.affine_grid(theta[:2].unsqueeze(0).expand(N, 2, 3), [N, C, H, W], align_corners=False)
    z = torch.nn.functional.grid_sample(y, grid, mode='bilinear', padding_mode='zeros', align_corners=False)

    m = torch.zeros_like(y)
    m[:, :, 2 * p + 1 : -(2 * p + 1), 2 * p + 1 : -(2 * p + 1)] = 1
    m = torch.nn.functional.grid_sample(m, grid, mode='nearest', padding_mode='zeros', align_corners=False)
    return z, m

#----------------------------------------------------------------------------

def apply_fractional_rotation(x, angle, a=3, **filter_kwargs):
    """Band-limited rotation of x by rotation_matrix(angle) about the image centre; returns (image, mask)."""
    angle = torch.as_tensor(angle).to(dtype=torch.float32, device=x.device)
    return apply_affine_transformation(x, rotation_matrix(angle), a=a, amax=a * 2, **filter_kwargs)

#----------------------------------------------------------------------------

def apply_fractional_pseudo_rotation(x, angle, a=3, **filter_kwargs):
    """The band limit of apply_fractional_rotation() without the rotation itself (EQ-R's treatment of G's output).

    An image that is already rotated (the generator's output) is filtered at its own rate with the filter
    of the inverse rotation, so that it matches the rotated reference up to the generator's own error.
    Returns (image, mask of pixels at least the filter's reach inside x).
    """
    angle = torch.as_tensor(angle).to(dtype=torch.float32, device=x.device)
    f = construct_affine_bandlimit_filter(rotation_matrix(-angle), a=a, amax=a * 2, up=1, **filter_kwargs)
    y = upfirdn2d.filter2d(x=x, f=f)
    c = f.shape[0] // 2
    m = torch.zeros_like(y)
    m[:, :, c:-c, c:-c] = 1
    return y, m

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
