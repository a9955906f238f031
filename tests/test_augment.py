"""Tests for training.augment: ADA's AugmentPipe (StyleGAN2-ADA appendix B), incl. per-clip augmentation of video."""

import pickle

import numpy as np
import pytest
import scipy.ndimage
import torch
import torch.nn.functional as F

from torch_utils.ops import grid_sample_gradfix, upfirdn2d
from training import augment
from training.augment import AugmentPipe

ALL = ['xflip', 'rotate90', 'xint', 'scale', 'rotate', 'aniso', 'xfrac',
       'brightness', 'contrast', 'lumaflip', 'hue', 'saturation', 'imgfilter', 'noise', 'cutout']
GEOMETRIC = ['xint', 'scale', 'rotate', 'aniso', 'xfrac']

#----------------------------------------------------------------------------

def _smooth_images(n=2, c=3, size=32, seed=0):
    """Band-limited test images: random 8x8 content, bicubically upsampled."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn([n, c, size // 4, size // 4], generator=g)
    return torch.nn.functional.interpolate(x, size=size, mode='bicubic', align_corners=False)

def _interior(x, border=4):
    return x[..., border:-border, border:-border]

def _coordinate_ramps(size):
    """Images [1, 2, size, size] whose channels hold each pixel centre's x and y, origin at the image centre."""
    u = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    Y, X = torch.meshgrid(u, u, indexing='ij')
    return torch.stack([X, Y])[None]

def _residual_offset(Hz):
    """Pixels by which geometric resampling conjugates a transform: the fixed quarter pixel minus the group delay of Hz."""
    Hz = Hz.double()
    delay = (torch.arange(Hz.numel()) * Hz).sum() / Hz.sum()
    return 0.25 - ((Hz.numel() - 1) / 2 - delay.item()) / 2

def _upstream_resample(x, G_inv, Hz):
    """The upstream's geometric resampling, constructed directly: reflect padding to the farthest transformed
    pixel-centre corner plus 2 * taps/4 pixels (at most size - 1), 2x upsampling with Hz, G_inv conjugated by
    half a sample of the 2x grid, affine_grid + bilinear grid_sample, 2x downsampling with the flipped Hz."""
    N, C, H, W = x.shape
    m = Hz.numel() // 4
    cx, cy = (W - 1) / 2, (H - 1) / 2
    corners = torch.tensor([[-cx, cx, cx, -cx], [-cy, -cy, cy, cy], [1, 1, 1, 1]])
    pts = (G_inv @ corners)[:, :2] # [N, 2, 4]
    pad = torch.cat([-pts, pts], dim=1).amax(dim=(0, 2)) + torch.tensor([2 * m - cx, 2 * m - cy] * 2)
    x0, y0, x1, y1 = [int(v) for v in pad.clamp(min=0).minimum(torch.tensor([W - 1., H - 1.] * 2)).ceil()]
    x = upfirdn2d.upsample2d(F.pad(x, [x0, x1, y0, y1], mode='reflect'), Hz, up=2)
    G = augment.translate2d((x0 - x1) / 2, (y0 - y1) / 2) @ G_inv                      # Origin at the padded centre.
    G = augment.scale2d(2, 2) @ G @ augment.scale2d_inv(2, 2)                            # 2x-grid units.
    G = augment.translate2d(-0.5, -0.5) @ G @ augment.translate2d_inv(-0.5, -0.5)       # Half a 2x sample.
    out_shape = [N, C, (H + 2 * m) * 2, (W + 2 * m) * 2]
    G = augment.scale2d(2 / x.shape[3], 2 / x.shape[2]) @ G @ augment.scale2d_inv(2 / out_shape[3], 2 / out_shape[2])
    grid = F.affine_grid(G[:, :2, :].float(), out_shape, align_corners=False)
    x = F.grid_sample(x, grid, mode='bilinear', padding_mode='zeros', align_corners=False)
    return upfirdn2d.downsample2d(x, Hz, down=2, padding=-2 * m, flip_filter=True)

def _firing_rate(name, p, debug_percentile, num_images=2000, **kwargs):
    """Fraction of images that one augmentation alone changes. Its parameters are fixed away from their
    neutral values (debug_percentile), so an image changes exactly when the augmentation fires."""
    torch.manual_seed(0)
    pipe = AugmentPipe(**{name: 1}, **kwargs)
    pipe.p.fill_(p)
    x = _smooth_images(n=num_images, size=(24 if name == 'imgfilter' else 16)) # imgfilter needs more than 21 pixels.
    y = pipe(x, debug_percentile=debug_percentile)
    return ((y - x).flatten(1).abs().amax(dim=1) > 1e-3).float().mean().item()

#----------------------------------------------------------------------------

def test_buffers_and_attributes_follow_the_contract():
    pipe = AugmentPipe(xflip=1, imgfilter_bands=[1, 0, 1, 0])
    assert [name for name, _ in pipe.named_buffers()] == ['p', 'Hz_geom', 'Hz_fbank']
    assert pipe.p.shape == torch.Size([]) and pipe.p.item() == 1
    assert pipe.Hz_geom.shape == torch.Size([12]) and pipe.Hz_fbank.shape == torch.Size([4, 43])
    assert pipe.Hz_geom.sum().item() == pytest.approx(1, abs=1e-6)
    assert isinstance(pipe.xflip, float) and pipe.xint_max == 0.125 and pipe.imgfilter_bands == [1, 0, 1, 0]
    assert set(augment.wavelets) >= {'haar', *[f'db{i}' for i in range(1, 9)], *[f'sym{i}' for i in range(2, 9)]}

def test_filter_bank_splits_the_spectrum_into_octaves_that_sum_to_identity():
    bank = AugmentPipe().Hz_fbank.double().numpy()
    impulse = np.zeros(43)
    impulse[21] = 1
    np.testing.assert_allclose(bank.sum(axis=0), impulse, atol=1e-6)
    np.testing.assert_allclose(bank, bank[:, ::-1], atol=1e-6) # Zero phase.
    freqs = np.linspace(0, np.pi, 257)
    response = np.abs(bank @ np.exp(-1j * np.outer(np.arange(43) - 21, freqs))) # [4, freqs]
    centres = [np.pi / 16, 3 * np.pi / 16, 3 * np.pi / 8, 3 * np.pi / 4] # Middle of each octave band.
    for band, centre in enumerate(centres):
        assert np.argmax(response[:, np.searchsorted(freqs, centre)]) == band

@pytest.mark.parametrize('name', ALL)
def test_each_augmentation_changes_images_and_keeps_shape_and_dtype(name):
    torch.manual_seed(1)
    x = _smooth_images(n=4)
    y = AugmentPipe(**{name: 1})(x)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert torch.isfinite(y).all()
    assert (y - x).abs().max() > 1e-2

def test_zero_probability_is_identity():
    x = torch.randn([3, 3, 32, 32])
    pipe = AugmentPipe(**{name: 1 for name in ALL})
    pipe.p.fill_(0)
    torch.testing.assert_close(pipe(x), x, atol=1e-4, rtol=0)

def test_geometric_pipeline_with_identity_parameters_preserves_the_image():
    x = torch.randn([2, 3, 32, 24]) # White noise and a non-square image: the hardest case.
    y = AugmentPipe(**{name: 1 for name in GEOMETRIC})(x, debug_percentile=0.5)
    torch.testing.assert_close(y, x, atol=1e-4, rtol=0)

@pytest.mark.parametrize('p', [0.2, 0.6])
@pytest.mark.parametrize('name', ALL)
def test_each_augmentation_fires_with_the_probability_ada_defines(name, p):
    # Every augmentation fires with p (arbitrary rotation: at least one of its two draws), imgfilter
    # amplifies each of its 4 bands with p independently.
    defined = 1 - (1 - p) ** 4 if name == 'imgfilter' else p
    assert _firing_rate(name, p, debug_percentile=0.9) == pytest.approx(defined, abs=0.03)

@pytest.mark.parametrize('p', [0.2, 0.6])
def test_each_of_the_two_rotation_draws_fires_with_one_minus_sqrt_one_minus_p(p):
    # At the top percentile one rotation is a half turn and two cancel: exactly one draw changes an image.
    p_rot = 1 - np.sqrt(1 - p)
    assert _firing_rate('rotate', p, debug_percentile=1.0) == pytest.approx(2 * p_rot * (1 - p_rot), abs=0.03)

def test_geometric_transforms_carry_the_upstream_quarter_pixel_conjugation():
    # On coordinate ramps the output is exactly the input coordinate each pixel samples:
    # G_inv(p + e) - e, with e = 1/4 - (group delay of sym6) = 0.049 px.
    x = _coordinate_ramps(48)
    X, Y = x[0]
    e = _residual_offset(AugmentPipe().Hz_geom)
    assert e == pytest.approx(0.049, abs=1e-3)
    s = 2 ** (torch.erfinv(torch.tensor(0.8)).item() * np.sqrt(2) * 0.2) # Scale at the 90th percentile.
    cases = [
        (AugmentPipe(xflip=1), 0.75, (-(X + e) - e, Y)),                           # Mirror.
        (AugmentPipe(rotate90=1), 0.3, (-(Y + e) - e, X)),                          # Quarter turn.
        (AugmentPipe(scale=1), 0.9, ((X + e) / s - e, (Y + e) / s - e)),            # Isotropic scaling.
    ]
    for pipe, percentile, expected in cases:
        y = pipe(x, debug_percentile=percentile)
        torch.testing.assert_close(_interior(y[0], 8), _interior(torch.stack(expected), 8), atol=1e-4, rtol=0)

@pytest.mark.parametrize('G_inv', [
    torch.diag(torch.tensor([-1.0, 1, 1])),                     # Flip.
    augment.rotate2d(torch.tensor(0.7)),                        # Rotation.
    augment.scale2d(1.3, 0.8) @ augment.translate2d(2.6, -1.2), # Anisotropic scaling and translation.
    augment.scale2d(5.0, 5.0),                                  # Zoom out: padding limited to size - 1.
], ids=['flip', 'rotate', 'aniso_translate', 'zoom_out'])
def test_geometric_resampling_equals_the_upstream_construction(G_inv):
    x = torch.randn([2, 3, 32, 24])
    G_inv = G_inv.to(torch.float32).expand(2, 3, 3)
    pipe = AugmentPipe(xflip=1)
    torch.testing.assert_close(pipe._resample(x, G_inv), _upstream_resample(x, G_inv, pipe.Hz_geom), atol=1e-4, rtol=0)

def test_integer_translation_moves_content_by_whole_pixels():
    x = torch.zeros([1, 1, 32, 32])
    x[0, 0, 10, 12] = 1
    y = AugmentPipe(xint=1, xint_max=0.25)(x, debug_percentile=0.0) # Shift by -0.25 * 32 = -8 pixels.
    expected = torch.zeros_like(x)
    expected[0, 0, 2, 4] = 1
    torch.testing.assert_close(y, expected, atol=1e-4, rtol=0)

def test_rotation_matches_an_analytic_rotation():
    size = 48
    coords = torch.arange(size) + 0.5 - size / 2
    Y, X = torch.meshgrid(coords, coords, indexing='ij')
    f = lambda X, Y: torch.cos(2 * np.pi * (2 * X + Y) / size) + torch.sin(2 * np.pi * (1.5 * Y - X) / size)
    theta = np.pi / 3 # Pre- and post-rotation at the top percentile, each a sixth of a half turn.
    y = AugmentPipe(rotate=1, rotate_max=1/6)(f(X, Y)[None, None], debug_percentile=1.0)
    e = _residual_offset(AugmentPipe().Hz_geom) # About a point e px off centre, as upstream.
    Xe, Ye = X + e, Y + e
    expected = f(np.cos(theta) * Xe - np.sin(theta) * Ye - e, np.sin(theta) * Xe + np.cos(theta) * Ye - e)
    inside = X.square() + Y.square() < (size / 2 - 6) ** 2
    assert (y[0, 0] - expected)[inside].abs().max() < 0.02

def test_colour_transforms_follow_their_definitions():
    x = torch.rand([2, 3, 16, 16])
    luma = x.mean(dim=1, keepdim=True)
    # Normal draws at the 95th percentile: sqrt(2) * erfinv(0.9) standard deviations.
    b = torch.erfinv(torch.tensor(0.9)).item() * np.sqrt(2) * 0.2
    torch.testing.assert_close(AugmentPipe(brightness=1)(x, debug_percentile=0.95), x + b, atol=1e-5, rtol=0)
    c = 2 ** (torch.erfinv(torch.tensor(0.9)).item() * np.sqrt(2) * 0.5)
    torch.testing.assert_close(AugmentPipe(contrast=1)(x, debug_percentile=0.95), x * c, atol=1e-5, rtol=0)
    torch.testing.assert_close(AugmentPipe(lumaflip=1)(x, debug_percentile=0.75), x - 2 * luma, atol=1e-5, rtol=0)
    s = 2 ** (torch.erfinv(torch.tensor(0.9)).item() * np.sqrt(2))
    torch.testing.assert_close(AugmentPipe(saturation=1)(x, debug_percentile=0.95), luma + (x - luma) * s, atol=1e-5, rtol=0)
    hued = AugmentPipe(hue=1)(x, debug_percentile=0.8) # Rotation about the grey axis: luma and chroma norm kept.
    torch.testing.assert_close(hued.mean(dim=1, keepdim=True), luma, atol=1e-5, rtol=0)
    torch.testing.assert_close((hued - luma).norm(dim=1), (x - luma).norm(dim=1), atol=1e-5, rtol=0)
    assert (hued - x).abs().max() > 0.05

def test_colour_transforms_accept_grayscale_and_reject_other_channel_counts():
    gray = torch.rand([2, 1, 16, 16])
    y = AugmentPipe(brightness=1, contrast=1, lumaflip=1, hue=1, saturation=1)(gray)
    assert y.shape == gray.shape
    torch.testing.assert_close(AugmentPipe(lumaflip=1)(gray, debug_percentile=0.75), -gray, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match='1 or 3 channels'):
        AugmentPipe(hue=1)(torch.rand([2, 4, 16, 16]))

def test_imgfilter_draw_equals_a_direct_construction_from_the_band_filters():
    # ADA appendix B: each band fires on its own; amplifying band i by g alone is normalised by the
    # expected power sum_j w_j t_j^2 of the gain vector t = (1, .., g, .., 1), w = [10, 1, 1, 1] / 13,
    # and the normalised vectors multiply.
    x = torch.randn([6, 3, 32, 32])
    bands = [1, 1, 0, 1]
    pipe = AugmentPipe(imgfilter=1, imgfilter_bands=bands)
    pipe.p.fill_(0.6)
    torch.manual_seed(3)
    y = pipe(x)

    torch.manual_seed(3) # Replay the draws: per band a normal log2 gain, then whether it fires.
    w = np.array([10, 1, 1, 1]) / 13
    gains = np.ones([6, 4])
    fired = np.zeros([6, 4], dtype=bool)
    for i, strength in enumerate(bands):
        g = 2 ** torch.randn([6]).double().numpy()
        fired[:, i] = (torch.rand([6]) < torch.tensor(0.6) * strength).numpy()
        t = np.ones([6, 4])
        t[:, i] = np.where(fired[:, i], g, 1)
        gains *= t / np.sqrt((w * t ** 2).sum(axis=1, keepdims=True))
    assert (fired.sum(axis=1) >= 2).any() and not fired[:, 2].any() # Some images with several bands; band 2 never.
    filters = gains @ pipe.Hz_fbank.double().numpy() # Per image one zero-phase 1-D filter, applied along x and y.
    expected = np.stack([scipy.ndimage.convolve1d(scipy.ndimage.convolve1d(image, f, axis=2, mode='mirror'), f, axis=1, mode='mirror')
        for image, f in zip(x.double().numpy(), filters)]) # Reflect padding is scipy's 'mirror'.
    np.testing.assert_allclose(y.numpy(), expected, atol=1e-4, rtol=0)

def test_cutout_zeroes_a_square_of_the_requested_size():
    x = torch.ones([1, 1, 32, 32])
    y = AugmentPipe(cutout=1, cutout_size=0.25)(x, debug_percentile=0.5)
    assert (y == 0).sum().item() == 8 * 8
    assert (y[0, 0, 12:20, 12:20] == 0).all()

@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_low_precision_images_keep_their_dtype(dtype):
    x = _smooth_images().to(dtype)
    y = AugmentPipe(xflip=1, rotate=1, brightness=1, imgfilter=1, noise=1)(x)
    assert y.dtype == dtype and torch.isfinite(y.float()).all()

#----------------------------------------------------------------------------
# Video clips [batch, frames, C, H, W]: one draw per clip.

def test_clip_frames_get_identical_augmentation_and_clips_get_different_draws():
    torch.manual_seed(0)
    frame = _smooth_images(n=1)[0]
    clips = frame.expand(4, 3, *frame.shape).clone() # 4 clips of 3 identical frames, all clips alike.
    y = AugmentPipe(**{name: 1 for name in ALL})(clips)
    assert y.shape == clips.shape
    for clip in y:
        for t in range(1, clip.shape[0]):
            torch.testing.assert_close(clip[t], clip[0], atol=0, rtol=0)
    assert all((y[i, 0] - y[0, 0]).abs().max() > 1e-2 for i in range(1, 4))

def test_clip_augmentation_equals_image_augmentation_with_the_same_parameters():
    clips = torch.randn([2, 3, 3, 32, 32])
    pipe = AugmentPipe(**{name: 1 for name in ALL if name != 'noise'})
    y_clips = pipe(clips, debug_percentile=0.3)
    y_frames = pipe(clips.reshape(6, 3, 32, 32), debug_percentile=0.3).reshape(clips.shape)
    torch.testing.assert_close(y_clips, y_frames, atol=1e-5, rtol=0)

#----------------------------------------------------------------------------
# Differentiability, as G's loss and D's R1 penalty need.

def test_gradient_is_the_adjoint_of_the_augmentation():
    # With fixed parameters the pipeline is affine in the images, so its gradient
    # must predict the change of the output exactly.
    pipe = AugmentPipe(**{name: 1 for name in ALL if name != 'noise'})
    x = torch.randn([2, 3, 32, 32], requires_grad=True)
    r = torch.randn([2, 3, 32, 32])
    e = torch.randn([2, 3, 32, 32])
    (grad,) = torch.autograd.grad((pipe(x, debug_percentile=0.3) * r).sum(), [x])
    change = ((pipe(x + e, debug_percentile=0.3) - pipe(x, debug_percentile=0.3)) * r).sum()
    assert grad.abs().sum() > 0
    assert (grad * e).sum().item() == pytest.approx(change.item(), rel=1e-3)

def test_double_backward_through_the_pipeline_reaches_the_discriminator(monkeypatch):
    monkeypatch.setattr(grid_sample_gradfix, 'enabled', True) # As the training loops set it for R1.
    torch.manual_seed(0)
    D = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Softplus(), torch.nn.Flatten(), torch.nn.Linear(4 * 30 * 30, 1))
    pipe = AugmentPipe(**{name: 1 for name in ALL})
    x = torch.randn([2, 3, 32, 32], requires_grad=True)
    (r1_grads,) = torch.autograd.grad(D(pipe(x)).sum(), [x], create_graph=True)
    r1_grads.square().sum().backward()
    grads = [D[0].weight.grad, D[0].bias.grad, D[3].weight.grad] # (D's output bias does not affect R1.)
    assert all(g is not None and torch.isfinite(g).all() and g.abs().sum() > 0 for g in grads)

def _autograd_node_names(root):
    """Names of every node of the autograd graph that ends in root (grad_fn.next_functions, recursively)."""
    names, seen, stack = set(), set(), [root]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        names.add(type(node).__name__)
        stack.extend(next_node for next_node, _ in node.next_functions)
    return names

def _r1_through_geometric_augmentation(seed=0):
    """R1 penalty of a tiny D behind ADA's geometric augmentation at p=1, and D's gradients of it."""
    torch.manual_seed(seed)
    D = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Softplus(), torch.nn.Flatten(), torch.nn.Linear(4 * 30 * 30, 1))
    pipe = AugmentPipe(xflip=1, rotate90=1, xint=1, scale=1, rotate=1, aniso=1, xfrac=1)
    x = torch.randn([2, 3, 32, 32], requires_grad=True)
    (r1_grads,) = torch.autograd.grad(D(pipe(x)).sum(), [x], create_graph=True)
    penalty = r1_grads.square().sum()
    return penalty, torch.autograd.grad(penalty, [D[0].weight, D[0].bias, D[3].weight])

def test_r1_through_geometric_augmentation_never_needs_pytorchs_grid_sampler_double_backward(monkeypatch):
    """PyTorch differentiates its grid_sampler_2d_backward only in its newest releases (older ones raise 'derivative
    for aten::grid_sampler_2d_backward is not implemented' at the first R1 step); grid_sample_gradfix must not use it."""
    monkeypatch.setattr(grid_sample_gradfix, 'enabled', True)
    penalty, _ = _r1_through_geometric_augmentation()
    names = _autograd_node_names(penalty.grad_fn)
    assert not [name for name in names if name.startswith('GridSampler2D')], sorted(names)

def test_r1_through_geometric_augmentation_equals_pytorchs_own_second_derivative(monkeypatch):
    monkeypatch.setattr(grid_sample_gradfix, 'enabled', True)
    penalty, grads = _r1_through_geometric_augmentation()
    monkeypatch.setattr(grid_sample_gradfix, 'enabled', False) # Plain F.grid_sample: needs PyTorch's own formula.
    try:
        ref_penalty, ref_grads = _r1_through_geometric_augmentation()
    except RuntimeError as err:
        pytest.skip(f'this PyTorch has no double backward of grid_sample to compare with: {err}')
    torch.testing.assert_close(penalty, ref_penalty)
    for g, ref in zip(grads, ref_grads):
        torch.testing.assert_close(g, ref)

def test_pipe_pickles_with_its_state():
    pipe = AugmentPipe(xflip=1, rotate=0.5, hue=1)
    pipe.p.fill_(0.3)
    clone = pickle.loads(pickle.dumps(pipe))
    assert type(clone).__name__ == 'AugmentPipe' and clone.rotate == 0.5
    assert clone.p.item() == pytest.approx(0.3)
    x = torch.randn([2, 3, 32, 32])
    outputs = []
    for module in [pipe, clone]:
        torch.manual_seed(5)
        outputs.append(module(x))
    torch.testing.assert_close(outputs[0], outputs[1])

#----------------------------------------------------------------------------
