"""Tests for svc_plugin.motion: blending weights, smoothness at key frames, StyleGAN-V's linear formula, lazy, chunked,
cyclic and far-time motion."""

import pickle

import pytest
import torch

from svc_plugin import motion

D = 4 # motion_z_distance of the small encoders below

def _encoder(kind='bspline', c_dim=0, seed=0):
    torch.manual_seed(seed)
    return motion.MotionEncoder(c_dim=c_dim, z_dim=32, v_dim=32, motion_z_distance=D, kind=kind, max_period_len=64)

def _v(encoder, t, c=None, **kwargs):
    """motion_v for times t [B, F], and the motion_z used."""
    with torch.no_grad():
        out = encoder(c, torch.as_tensor(t, dtype=torch.float32), **kwargs)
    return out['motion_v'], out['motion_z']

@pytest.fixture(scope='module', params=['bspline', 'linear'])
def encoder(request):
    return _encoder(request.param)

#----------------------------------------------------------------------------

def test_blend_weights_known_values():
    u = torch.tensor([0, 0.5, 0.999])
    bspline = motion.blend_weights(u, 'bspline')
    expected = torch.tensor([[0.5, 0.5, 0], [0.125, 0.75, 0.125], [0.001**2 / 2, 0.5 + 0.999 - 0.999**2, 0.999**2 / 2]])
    assert torch.allclose(bspline, expected, atol=1e-6)
    assert torch.allclose(motion.blend_weights(u, 'linear'), torch.stack([1 - u, u], dim=1))

@pytest.mark.parametrize('kind', ['bspline', 'linear'])
def test_blend_weights_sum_to_one_keeping_shape_and_dtype(kind):
    u = torch.rand([5, 7], dtype=torch.float64)
    weights = motion.blend_weights(u, kind)
    assert weights.shape == (5, 7, motion.num_blended_keys(kind)) and weights.dtype == torch.float64
    assert torch.allclose(weights.sum(dim=-1), torch.ones_like(u))
    assert (weights >= 0).all()

def test_blend_weights_reject_unknown_kind():
    with pytest.raises(ValueError, match='cubic'):
        motion.blend_weights(torch.zeros([1]), 'cubic')

def test_bspline_weights_are_c1_across_interval_boundaries():
    # Weights of key k+1 at the end of interval k continue as the weights of that key in interval k+1.
    end, start = motion.blend_weights(torch.tensor([1.0]), 'bspline')[0], motion.blend_weights(torch.tensor([0.0]), 'bspline')[0]
    assert torch.allclose(end[1:], start[:2]) and end[0] == 0
    h = 1e-4
    slope_end = (end - motion.blend_weights(torch.tensor([1.0 - h], dtype=torch.float64), 'bspline')[0]) / h
    slope_start = (motion.blend_weights(torch.tensor([h], dtype=torch.float64), 'bspline')[0] - start) / h
    assert torch.allclose(slope_end[1:].float(), slope_start[:2].float(), atol=1e-3)

#----------------------------------------------------------------------------

def _derivative_jumps(encoder, times, h=1e-2, **kwargs):
    """max over channels of |v'(t+) - v'(t-)| (one-sided finite differences) at each of the times."""
    t = torch.stack([times - h, times, times + h], dim=1).reshape(1, -1)
    v, _ = _v(encoder, t, motion_seeds=[3], **kwargs)
    v = v.double().reshape(len(times), 3, -1)
    return ((v[:, 2] - v[:, 1]) - (v[:, 1] - v[:, 0])).abs().amax(dim=1) / h

def test_bspline_motion_has_no_derivative_jump_at_key_frames_while_linear_has_one():
    keys = torch.arange(2, 12, dtype=torch.float64) * D
    mids = keys + D / 2 # smooth points: their jump is the finite-difference error alone
    bspline, linear = _encoder('bspline'), _encoder('linear')
    bspline_key, bspline_mid = _derivative_jumps(bspline, keys), _derivative_jumps(bspline, mids)
    linear_key, linear_mid = _derivative_jumps(linear, keys), _derivative_jumps(linear, mids)
    assert bspline_key.max() < 3 * bspline_mid.max() # no kink: as smooth as the middle of an interval
    assert linear_key.min() > 10 * linear_mid.max() # a kink at every key frame
    assert linear_key.median() > 10 * bspline_key.median()

def test_motion_is_continuous_at_key_frames(encoder):
    keys = torch.arange(1, 9, dtype=torch.float32) * D
    before, _ = _v(encoder, (keys - 1e-3).unsqueeze(0), motion_seeds=[1])
    at, _ = _v(encoder, keys.unsqueeze(0), motion_seeds=[1])
    assert (before - at).abs().max() < 1e-2

def test_motion_changes_over_time(encoder):
    v, _ = _v(encoder, [[0, 1.5, 17.25]], motion_seeds=[0])
    assert v.shape == (3, 32) and v.dtype == torch.float32
    assert (v[0] - v[1]).abs().max() > 1e-3 and (v[1] - v[2]).abs().max() > 1e-3

#----------------------------------------------------------------------------

def test_frame_reads_only_the_noise_slots_around_it(encoder):
    # Frame t in key interval k reads slots k-R .. k+K-1+R: R = 10 for kernel 11 (21 slots per key code).
    t = torch.tensor([[9.0 * D + 1.5]])
    v, z = _v(encoder, t, motion_seeds=[0])
    assert z.shape[1] == encoder.num_keys + 20
    shifted = t + 5 * D # the same slot pattern five keys later: a fresh draw
    v_far, z_far = _v(encoder, shifted, motion_seeds=[0])
    overlap = z.shape[1] - 5
    assert torch.equal(z[:, 5:], z_far[:, :overlap]) # noise of a slot does not depend on the call
    assert not torch.allclose(v, v_far)

def test_chunked_generation_equals_one_piece(encoder):
    t = torch.arange(0, 45, dtype=torch.float32).reshape(1, -1) * 0.75
    seeds = [11]
    whole, _ = _v(encoder, t, motion_seeds=seeds)
    chunks = [_v(encoder, t[:, lo:hi], motion_seeds=seeds)[0] for lo, hi in [(0, 7), (7, 20), (20, 21), (21, 45)]]
    # Equal up to float32 rounding of batch-size dependent matmuls (phases reach tens of radians).
    assert torch.allclose(torch.cat(chunks), whole, atol=5e-5)

def test_videos_of_a_batch_are_independent(encoder):
    seeds = [5, 6]
    both, _ = _v(encoder, [[0, 3, 100], [7, 8.5, 9]], motion_seeds=seeds)
    first, _ = _v(encoder, [[0, 3, 100]], motion_seeds=seeds[:1])
    second, _ = _v(encoder, [[7, 8.5, 9]], motion_seeds=seeds[1:])
    assert torch.allclose(both, torch.cat([first, second]), atol=5e-5)

def test_motion_z_repeats_a_call_exactly(encoder):
    t = [[0, 2.5, 31], [4, 4.5, 60]]
    v, z = _v(encoder, t)
    again, z_again = _v(encoder, t, motion_z=z)
    assert torch.equal(v, again) and torch.equal(z, z_again)
    other, _ = _v(encoder, t)
    assert not torch.allclose(v, other) # fresh noise without motion_z

def test_seeds_give_the_same_noise_as_their_motion_z(encoder):
    t = [[1, 30.5]]
    v, z = _v(encoder, t, motion_seeds=[9])
    assert torch.equal(_v(encoder, t, motion_z=z)[0], v)

def test_label_conditions_the_motion():
    encoder = _encoder(c_dim=3)
    c = torch.eye(3)[:2]
    v, _ = _v(encoder, [[0, 5], [0, 5]], c=c, motion_seeds=[1, 1])
    assert not torch.allclose(v[:2], v[2:])

#----------------------------------------------------------------------------

@pytest.mark.parametrize('period', [3 * D, 8 * D])
def test_cyclic_motion_repeats_exactly(encoder, period):
    t = torch.tensor([[0, 0.375, 1.5, 5.75, 11.875, 17, 22.5, 30.125]]) # exact in float32 after the shifts
    t = t[:, t[0] < period]
    v, _ = _v(encoder, t, motion_seeds=[2], motion_period=period)
    for shift in [period, 5 * period, 12500 * period]:
        v_shift, _ = _v(encoder, t + shift, motion_seeds=[2], motion_period=period)
        assert torch.allclose(v, v_shift, atol=1e-6), shift
    # Fresh noise: the ring it returns makes the same loop.
    v_ring, ring = _v(encoder, t, motion_period=period)
    assert torch.allclose(_v(encoder, t + period, motion_z=ring, motion_period=period)[0], v_ring, atol=1e-6)

def test_cyclic_motion_is_smooth_across_the_seam():
    encoder = _encoder('bspline')
    period = 6 * D
    seam = torch.tensor([period], dtype=torch.float64)
    mid = seam - D / 2
    assert _derivative_jumps(encoder, seam, motion_period=period).max() < 3 * _derivative_jumps(encoder, mid, motion_period=period).max() + 0.05
    before, _ = _v(encoder, [[period - 1e-3]], motion_seeds=[3], motion_period=period)
    start, _ = _v(encoder, [[0.0]], motion_seeds=[3], motion_period=period)
    assert (before - start).abs().max() < 1e-2

def test_bspline_far_time_equals_shifted_noise():
    # A million frames later (a multiple of d) the same noise gives the same B-spline motion: key-local time, no precision loss.
    encoder = _encoder('bspline')
    t = torch.tensor([[0, 0.25, 3.5, 9, 13.75]])
    v, z = _v(encoder, t, motion_seeds=[4])
    far = t + 1e6
    v_far, z_far = _v(encoder, far, motion_z=z)
    assert torch.allclose(v, v_far, atol=1e-5)
    assert z_far.shape == z.shape # the far frames read as many slots as the near ones

def _stylegan_v_linear(encoder, t, seed):
    """StyleGAN-V's aligned time encoder written out in float64, absolute time, on the encoder's own key codes:
    periods and phases of the left key k, v = e(t) - [(1-w) e(kd) + w e(kd+d)] + (1-w) a_k + w a_{k+1}."""
    t64, keys, _, window = encoder.frame_keys(t)
    noise, _ = encoder.read_noise(window.flatten(1), None, [seed])
    codes = encoder.key_codes(noise.reshape(-1, window.shape[2], encoder.z_dim), None, t.shape[1]).unsqueeze(0) # [1, F, 2, z_dim]
    # The encoder's own float32 predictions (as it batches them): at t = 1e6 one ulp of a period moves the phase by ~0.05.
    p = (encoder.period_predictor(codes).tanh() + 1)[0, :, 0].double()
    phi = (encoder.phase_predictor(codes) * encoder.phase_scales)[0, :, 0].double()
    a = encoder.aligner_predictor(codes)[0].double()
    def e(s):
        x = encoder.freqs.double() * p * s[:, None] + phi
        return torch.cat([x.sin(), x.cos()], dim=1)
    t64 = t64[0]
    left = torch.floor(t64 / D) * D
    w = ((t64 - left) / D)[:, None]
    return e(t64) - ((1 - w) * e(left) + w * e(left + D)) + (1 - w) * a[:, 0] + w * a[:, 1]

def test_linear_motion_is_stylegan_v_formula_in_absolute_time_exact_far_away():
    encoder = _encoder('linear')
    t = torch.tensor([[0, 2.5, 4, 7.75, 33.3, 61, 1e6 + 1.25, 1e6 + 17.5, 3e7 + 2]], dtype=torch.float64) # exact in float32
    with torch.no_grad():
        expected = _stylegan_v_linear(encoder, t, seed=6)
        v, _ = _v(encoder, t, motion_seeds=[6])
    # float32 rounding only, at frame 3e7 too: the phase is reduced modulo 2 pi in float64.
    assert (v.double() - expected).abs().max() < 2e-5
    assert (v.double() - expected)[:6].abs().max() < 2e-6

def test_far_time_is_as_lazy_as_time_zero(encoder):
    _, z_near = _v(encoder, [[0, 1]], motion_seeds=[0]) # both frames in key interval 0: one window
    _, z_sparse = _v(encoder, [[0, 1e6]], motion_seeds=[0]) # two far-apart frames: two windows, nothing between
    assert z_sparse.shape[1] == 2 * z_near.shape[1]
    v, _ = _v(encoder, [[1e6, 1e6 + 0.5]], motion_seeds=[0])
    assert torch.isfinite(v).all() and (v[0] - v[1]).abs().max() > 1e-4

#----------------------------------------------------------------------------

def test_invalid_motion_arguments_are_rejected(encoder):
    t = torch.zeros([1, 2])
    with pytest.raises(ValueError, match='multiple'):
        encoder(None, t, motion_period=D + 1)
    with pytest.raises(ValueError, match='not both'):
        encoder(None, t, motion_z=torch.zeros([1, 1, 32]), motion_seeds=[0])
    with pytest.raises(ValueError, match='does not fit'):
        encoder(None, t, motion_z=torch.zeros([1, 3, 32]))
    with pytest.raises(ValueError, match='motion_seeds'):
        encoder(None, t, motion_seeds=[0, 1])

def test_encoder_pickles_with_its_options(encoder):
    clone = pickle.loads(pickle.dumps(encoder))
    assert clone.init_kwargs.kind == encoder.kind and clone.motion_z_distance == D
    t = [[0, 7.5]]
    assert torch.equal(_v(clone, t, motion_seeds=[1])[0], _v(encoder, t, motion_seeds=[1])[0])

#----------------------------------------------------------------------------

def test_temporal_conv_is_a_plain_conv1d_then_leaky_relu_with_slope_0_2_and_gain_1():
    torch.manual_seed(0)
    conv = motion.TemporalConv1d(6, 5, kernel_size=3, lr_multiplier=0.01)
    with torch.no_grad():
        conv.bias.normal_() # Nonzero bias: its lr scaling is checked too.
    x = torch.randn([2, 6, 9])
    weight = conv.weight * 0.01 / (6 * 3) ** 0.5 # Equalized lr: lr_multiplier / sqrt(fan_in).
    expected = torch.nn.functional.leaky_relu(torch.nn.functional.conv1d(x, weight, conv.bias * 0.01), negative_slope=0.2)
    assert torch.allclose(conv(x), expected, atol=1e-6)

#----------------------------------------------------------------------------
# The B-spline branch by its values, from the formula written out.

def test_bspline_embedding_is_the_weighted_sum_of_the_three_keys_embeddings_in_their_local_time():
    """v(t) = sum_j w_j(u) ([sin, cos](omega p_{k+j} (t - c_{k+j}) + phi_{k+j}) + a_{k+j}), with w = (1-u)^2/2,
    1/2 + u - u^2, u^2/2 and c_{k+j} = (k + j - 1/2) d (arXiv 2212.07413), evaluated in float64 by loops."""
    encoder = _encoder('bspline')
    g = torch.Generator().manual_seed(0)
    u = torch.tensor([[0.0, 0.25, 0.6, 0.95]]) # [B=1, F=4]
    num_freqs = encoder.v_dim // 2
    periods = torch.rand([1, 4, 3, num_freqs], generator=g) * 2 # [B, F, K, num_freqs]
    phases = torch.randn([1, 4, 3, num_freqs], generator=g)
    aligners = torch.randn([1, 4, 3, encoder.v_dim], generator=g)
    v = encoder.bspline_embedding(u, periods, phases, aligners) # [B, F, v_dim]
    omega = encoder.freqs.double()
    for f, uf in enumerate(u[0].double().tolist()):
        weights = [(1 - uf) ** 2 / 2, 0.5 + uf - uf ** 2, uf ** 2 / 2]
        expected = torch.zeros([encoder.v_dim], dtype=torch.float64)
        for j in range(3):
            local_t = (uf - j + 0.5) * D # t - c_{k+j}, with t = (k + u) d
            angle = omega * periods[0, f, j].double() * local_t + phases[0, f, j].double()
            expected += weights[j] * (torch.cat([angle.sin(), angle.cos()]) + aligners[0, f, j].double())
        assert torch.allclose(v[0, f].double(), expected, atol=1e-5)

def test_bspline_motion_of_constant_codes_is_the_blend_of_plain_sinusoids():
    """With the period, phase and aligner predictors zeroed every key code predicts p = 1, phi = 0, a = 0, so v(t)
    depends on t alone: sum_j w_j(u) [sin, cos](omega (u - j + 1/2) d); the linear branch gives other values."""
    values = {}
    for kind in ['bspline', 'linear']:
        encoder = _encoder(kind)
        with torch.no_grad():
            for predictor in [encoder.period_predictor, encoder.phase_predictor, encoder.aligner_predictor]:
                predictor.weight.zero_()
        values[kind], _ = _v(encoder, [[5.0, 9.5, 14.25]], motion_seeds=[0])
    omega = _encoder().freqs.double()
    for f, t in enumerate([5.0, 9.5, 14.25]):
        uf = t / D % 1
        weights = [(1 - uf) ** 2 / 2, 0.5 + uf - uf ** 2, uf ** 2 / 2]
        angles = [omega * (uf - j + 0.5) * D for j in range(3)]
        expected = sum(w * torch.cat([a.sin(), a.cos()]) for w, a in zip(weights, angles))
        assert torch.allclose(values['bspline'][f].double(), expected, atol=1e-5)
    assert (values['bspline'] - values['linear']).abs().max() > 0.1

#----------------------------------------------------------------------------
