"""Tests for training.augment: ADA's AugmentPipe (StyleGAN2-ADA appendix B), incl. per-clip augmentation of video."""

import pickle

import numpy as np
import pytest
import torch

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

def test_xflip_and_rotate90_match_pixel_operations():
    x = _smooth_images()
    flipped = AugmentPipe(xflip=1)(x, debug_percentile=0.75)
    torch.testing.assert_close(_interior(flipped), _interior(x.flip(3)), atol=0.05, rtol=0)
    rotated = AugmentPipe(rotate90=1)(x, debug_percentile=0.3) # One quarter turn.
    errors = [(_interior(rotated) - _interior(torch.rot90(x, k, dims=(2, 3)))).abs().max() for k in range(4)]
    assert min(errors) < 0.05

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
    expected = f(np.cos(theta) * X - np.sin(theta) * Y, np.sin(theta) * X + np.cos(theta) * Y)
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

def test_double_backward_through_the_pipeline_reaches_the_discriminator():
    torch.manual_seed(0)
    D = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Softplus(), torch.nn.Flatten(), torch.nn.Linear(4 * 30 * 30, 1))
    pipe = AugmentPipe(**{name: 1 for name in ALL})
    x = torch.randn([2, 3, 32, 32], requires_grad=True)
    (r1_grads,) = torch.autograd.grad(D(pipe(x)).sum(), [x], create_graph=True)
    r1_grads.square().sum().backward()
    grads = [D[0].weight.grad, D[0].bias.grad, D[3].weight.grad] # (D's output bias does not affect R1.)
    assert all(g is not None and torch.isfinite(g).all() and g.abs().sum() > 0 for g in grads)

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
