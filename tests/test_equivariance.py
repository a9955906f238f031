"""Tests for metrics.equivariance: resampling helpers against analytic signals, and EQ-T/EQ-R on fresh generators."""

import math

import numpy as np
import pytest
import scipy.ndimage
import torch

import dnnlib
from metrics import equivariance as eq
from training import networks_stylegan2 as n2
from training import networks_stylegan3 as n3

#----------------------------------------------------------------------------

def _sinusoids(size, shift=(0, 0), angle=0, seed=0, max_freq=0.3):
    """A band-limited test image [1, 1, size, size]: random sinusoids up to max_freq cycles/pixel, sampled at
    the pixel centres after moving the content by `shift` pixels and rotating it by `angle` about the centre."""
    g = torch.Generator().manual_seed(seed)
    freqs = torch.randn([32, 2], generator=g, dtype=torch.float64)
    freqs = freqs / freqs.norm(dim=1, keepdim=True) * torch.rand([32, 1], generator=g, dtype=torch.float64) * max_freq
    phases = torch.rand([32], generator=g, dtype=torch.float64) * 2 * np.pi
    amps = torch.randn([32], generator=g, dtype=torch.float64) * 0.1
    c = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    y, x = torch.meshgrid(c, c, indexing='ij')
    x, y = x - shift[0], y - shift[1]
    x, y = math.cos(angle) * x + math.sin(angle) * y, -math.sin(angle) * x + math.cos(angle) * y # inverse rotation
    arg = freqs[:, 0, None, None] * x + freqs[:, 1, None, None] * y
    img = (amps[:, None, None] * torch.sin(2 * np.pi * arg + phases[:, None, None])).sum(0)
    return img[None, None].to(torch.float32)

def _psnr(a, b, mask):
    mse = float(((a - b).square() * mask).sum() / mask.sum())
    return 20 * np.log10(2) - 10 * np.log10(mse)

def _opts(G):
    return dnnlib.EasyDict(G=G, G_kwargs={}, device=torch.device('cpu'), num_gpus=1, rank=0, progress=None)

def _fresh_generator(cfg):
    """Untrained, shallow 32x32 StyleGAN3: equivariance comes from the architecture, not from training."""
    torch.manual_seed(0)
    kwargs = dict(channel_base=512, channel_max=16, num_layers=6)
    if cfg == 'r':
        kwargs.update(conv_kernel=1, use_radial_filters=True)
    return n3.Generator(z_dim=32, c_dim=0, w_dim=32, img_resolution=32, img_channels=3, **kwargs)

#----------------------------------------------------------------------------

def test_integer_translation_moves_content_and_masks_the_gap():
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    y, m = eq.apply_integer_translation(x, 0.25, -0.5) # one pixel right, two pixels up
    assert torch.equal(y[0, 0, :2, 1:], x[0, 0, 2:, :3])
    assert torch.equal(m[0, 0], torch.tensor([[0, 1, 1, 1], [0, 1, 1, 1], [0, 0, 0, 0], [0, 0, 0, 0]], dtype=torch.float32))
    assert float((y * (1 - m)).abs().sum()) == 0

def test_fractional_translation_matches_analytic_shift():
    x = _sinusoids(64, max_freq=0.2)
    y, m = eq.apply_fractional_translation(x, 3.4 / 64, -1.7 / 64)
    assert _psnr(y, _sinusoids(64, shift=(3.4, -1.7), max_freq=0.2), m) > 55
    assert 0.7 < float(m.mean()) < 0.85
    y, m = eq.apply_fractional_translation(x, 2 / 64, 0) # integer shifts are exact
    assert torch.allclose(y * m, eq.apply_integer_translation(x, 2 / 64, 0)[0] * m, atol=1e-6)

def test_rotation_matrix_follows_the_upstream_convention():
    c, s = math.cos(0.3), math.sin(0.3)
    expected = torch.tensor([[c, s, 0], [-s, c, 0], [0, 0, 1]], dtype=torch.float32)
    assert torch.allclose(eq.rotation_matrix(0.3), expected)

def test_rotation_reference_matches_pseudo_rotated_analytic_rotation():
    # rotation_matrix(angle) turns content by -angle in _sinusoids' convention (from +x towards +y).
    x = _sinusoids(64)
    angle = 0.7
    ref, ref_mask = eq.apply_fractional_rotation(x, angle)
    exact = _sinusoids(64, angle=-angle)
    assert _psnr(ref, exact, ref_mask) > 55
    pseudo, pseudo_mask = eq.apply_fractional_pseudo_rotation(exact, angle)
    mask = ref_mask * pseudo_mask
    assert float(mask.mean()) > 0.3
    assert _psnr(ref, pseudo, mask) > 45
    wrong, _ = eq.apply_fractional_pseudo_rotation(_sinusoids(64, angle=angle), angle)
    assert _psnr(ref, wrong, mask) < 30

def test_identity_resampling_returns_the_image_and_masks_the_filter_reach():
    # Samples land on the interpolated image's taps at the pixel centres, which are nearly a unit impulse:
    # white noise comes back with a mean squared error below 1e-4, where a misalignment by an eighth of
    # a pixel would leave several percent.
    x = torch.randn([2, 3, 40, 40])
    y, m = eq.apply_affine_transformation(x, torch.eye(3), a=3, amax=6) # Filter reach 6 pixels.
    assert float(((y - x).square() * m).sum() / m.sum()) < 1e-4
    assert torch.equal(m[0, 0].sum(0) > 0, (torch.arange(40) >= 6) & (torch.arange(40) < 34))
    pseudo, pseudo_mask = eq.apply_fractional_pseudo_rotation(x, 0.0) # Filter of 11 taps: 5 pixels of reach.
    assert torch.allclose(pseudo, x, atol=1e-5)
    assert torch.equal(pseudo_mask[0, 0, 20] > 0, (torch.arange(40) >= 5) & (torch.arange(40) < 35))

def test_bandlimit_filter_equals_a_direct_construction():
    # Appendix E: (sinc along the input axes * sinc along the rotated axes) times
    # (Lanczos window along the input axes * the rotated window), '*' a circular convolution over the
    # tap grid (here computed directly, not by FFT), cut to amax pixels per side; each of the up x up
    # polyphase components sums to 1/up^2.
    a, amax, aflt, up = 2, 3, 6, 2
    M = eq.rotation_matrix(0.4).double().numpy()
    n = 2 * aflt * up - 1
    taps = (np.arange(n) - (n - 1) // 2) / up
    yi, xi = np.meshgrid(taps, taps, indexing='ij')
    xo, yo = M[0, 0] * xi + M[0, 1] * yi, M[1, 0] * xi + M[1, 1] * yi
    window = lambda v: np.where(np.abs(v) < a, np.sinc(v / a), 0)
    conv = lambda p, q: scipy.ndimage.convolve(p, q, mode='wrap')
    f = conv(np.sinc(xi) * np.sinc(yi), np.sinc(xo) * np.sinc(yo)) * conv(window(xi) * window(yi), window(xo) * window(yo))
    c = (aflt - amax) * up
    f = f[c:n - c, c:n - c]
    phase = np.arange(f.shape[0]) % up
    for py in range(up):
        for px in range(up):
            block = np.ix_(phase == py, phase == px)
            f[block] /= f[block].sum() * up ** 2
    ours = eq.construct_affine_bandlimit_filter(eq.rotation_matrix(0.4), a=a, amax=amax, aflt=aflt, up=up)
    assert ours.shape == (2 * amax * up - 1,) * 2 == f.shape and ours.dtype == torch.float32
    np.testing.assert_allclose(ours.numpy(), f, atol=1e-6)
    assert torch.allclose(ours, ours.flip(0).flip(1), atol=1e-6) # Point symmetric, as every rotation's filter.

#----------------------------------------------------------------------------

def test_fresh_stylegan3_t_is_translation_equivariant():
    # One batch: a shift of (1, -3) pixels for EQ-T and (3.7, 3.9) pixels for EQ-T_frac (seeded).
    eqt_int, eqt_frac = eq.compute_equivariance_metrics(_opts(_fresh_generator('t')), num_samples=8, batch_size=8,
        compute_eqt_int=True, compute_eqt_frac=True)
    assert isinstance(eqt_int, float) and isinstance(eqt_frac, float) # Several metrics: a tuple.
    assert eqt_int > 65 and eqt_frac > 65

def test_eqr_separates_stylegan3_r_from_stylegan3_t():
    # Only config R (1x1 convolutions, radial down-sampling filters) is built for rotation equivariance.
    eqr_r = eq.compute_equivariance_metrics(_opts(_fresh_generator('r')), num_samples=4, batch_size=4, compute_eqr=True)
    eqr_t = eq.compute_equivariance_metrics(_opts(_fresh_generator('t')), num_samples=4, batch_size=4, compute_eqr=True)
    assert isinstance(eqr_r, float) # One metric: a bare float, as upstream.
    assert eqr_r > 65 and eqr_t < eqr_r - 20

def test_equivariance_needs_a_stylegan3_generator():
    G = n2.Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=8, img_channels=3, channel_base=64, channel_max=8)
    with pytest.raises(ValueError, match='input.transform'):
        eq.compute_equivariance_metrics(_opts(G), num_samples=4, batch_size=4, compute_eqt_int=True)

#----------------------------------------------------------------------------
