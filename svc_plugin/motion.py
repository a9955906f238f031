"""Motion codes and the motion embedding v(t) of the video generator (Zhang et al., arXiv 2212.07413; StyleGAN-V, arXiv 2112.14683).

StyleGAN-V's motion pipeline (random key codes every `motion_z_distance` frames, a padding-free
temporal convolution net, an aligned Fourier time encoder) with StyleSV's C1-smooth B-spline blending,
evaluated lazily: a frame at time t touches only the noise around t, so any frame of an unbounded
video costs the same, and chunked generation equals one-piece generation.
"""

import numpy as np
import torch
from torch_utils import misc
from torch_utils import persistence
from torch_utils.ops import bias_act
from training import networks_stylegan3

_MASK64 = (1 << 64) - 1

#----------------------------------------------------------------------------

def blend_weights(u, kind):
    """Weights of the key codes around a frame, shape u.shape + (K,), on u's device and dtype.

    u in [0, 1) is the frame's position inside its key interval [k*d, (k+1)*d). 'bspline' (K=3, keys
    k, k+1, k+2): the uniform quadratic B-spline basis, C1 across interval boundaries. 'linear' (K=2,
    keys k, k+1): StyleGAN-V's interpolation, whose derivative jumps at every key frame.
    """
    if kind == 'bspline':
        return torch.stack([(1 - u).square() / 2, 0.5 + u - u.square(), u.square() / 2], dim=-1)
    if kind == 'linear':
        return torch.stack([1 - u, u], dim=-1)
    raise ValueError(f"Unknown blending kind {kind!r}: expected 'bspline' or 'linear'")

def num_blended_keys(kind):
    """How many neighbouring key codes blend_weights() mixes for this kind."""
    return blend_weights(torch.zeros([]), kind).shape[-1]

#----------------------------------------------------------------------------

def slot_seed(seed, slot):
    """64-bit generator seed of one noise slot: splitmix64 of (seed, slot), a pure function of both."""
    x = (int(seed) * 0x9E3779B97F4A7C15 + int(slot) * 0xD1B54A32D192ED03) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)

def seeded_noise(seeds, slots, dim):
    """Standard normal noise [B, S, dim] where row [b, s] depends only on (seeds[b], slots[b, s]).

    Counter-based, so a slot's noise never depends on which other slots are drawn with it: this is
    what makes chunked generation equal one-piece generation. Drawn on the CPU, so that the same seed
    gives the same noise whichever device runs the model; once per call, outside the differentiable path.
    """
    slots = slots.cpu().tolist() # [B, S]
    gen = torch.Generator()
    noise = torch.empty([len(slots), len(slots[0]), dim])
    for b, (seed, row) in enumerate(zip(seeds, slots)):
        for s, slot in enumerate(row):
            gen.manual_seed(slot_seed(seed, slot))
            noise[b, s] = torch.randn([dim], generator=gen)
    return noise

def distinct_slots(slots):
    """Slots [B, N] (with repeats) -> (distinct [B, n]: each video's distinct slots in ascending order, padded
    with slot 0 where a video has fewer; rank [B, N]: the index of each slot among its video's distinct ones)."""
    sorted_slots, order = slots.sort(dim=1)
    is_new = torch.ones_like(sorted_slots, dtype=torch.bool)
    is_new[:, 1:] = sorted_slots[:, 1:] != sorted_slots[:, :-1]
    rank_sorted = is_new.cumsum(dim=1) - 1 # [B, N], ascending
    rank = torch.empty_like(rank_sorted).scatter_(1, order, rank_sorted) # [B, N], in the order of slots
    num_distinct = int(rank_sorted[:, -1].max()) + 1
    distinct = torch.zeros_like(slots[:, :num_distinct]).scatter_(1, rank_sorted, sorted_slots) # [B, num_distinct]
    return distinct, rank

#----------------------------------------------------------------------------

@persistence.persistent_class
class TemporalConv1d(torch.nn.Module):
    """Padding-free 1-D convolution over key slots with equalized learning rate, then an activation with
    gain 1 (StyleGAN-V's temporal convolutions: a plain leaky ReLU, not bias_act's sqrt(2)-scaled one)."""

    def __init__(self,
        in_channels,                # Input channels.
        out_channels,               # Output channels.
        kernel_size,                # Taps, in key slots.
        activation      = 'lrelu',  # Name in bias_act.activation_funcs.
        lr_multiplier   = 1,        # Effective learning-rate scale of this layer.
    ):
        super().__init__()
        self.activation = activation
        self.weight = torch.nn.Parameter(torch.randn([out_channels, in_channels, kernel_size]) / lr_multiplier)
        self.bias = torch.nn.Parameter(torch.zeros([out_channels]))
        self.weight_gain = lr_multiplier / np.sqrt(in_channels * kernel_size)
        self.bias_gain = lr_multiplier

    def forward(self, x):
        x = torch.nn.functional.conv1d(x, self.weight.to(x.dtype) * self.weight_gain) # [B, out, S - kernel_size + 1]
        return bias_act.bias_act(x, (self.bias * self.bias_gain).to(x.dtype), act=self.activation, gain=1)

#----------------------------------------------------------------------------

@persistence.persistent_class
class MotionEncoder(torch.nn.Module):
    """Frame times t -> motion embedding v(t): key codes from noise, then the aligned Fourier time encoder.

    Key code m sits at key frame m*d and is computed from noise slots m-R .. m+R (R = kernel_size-1, two
    valid convolutions: 21 slots for kernel 11). From code m the encoder predicts periods
    p_m = tanh(A_p u_m) + 1, phases phi_m = A_phi u_m (scaled by max_period_len / period length, as
    StyleGAN-V) and aligners a_m = A_a u_m; with omega = 2 pi / base periods, key m's sinusoid at time s is

        e_m(s) = [sin, cos](omega * p_m * s + phi_m).

    'linear' is StyleGAN-V's formula (universome/stylegan-v and genforce/StyleSV, AlignedTimeEncoder) in
    absolute time: periods and phases from code k = floor(t/d), u = (t mod d)/d,
    v(t) = e_k(t) - [(1-u) e_k(kd) + u e_k(kd+d)] + (1-u) a_k + u a_{k+1}: continuous (v(kd) = a_k), but
    its derivative jumps at every key frame.
    'bspline' (StyleSV's C1 motion, our formulation): v(t) = sum_j w_j(u) [e_{k+j}(t - c_{k+j}) + a_{k+j}],
    j = 0..2, each key's sinusoid in time local to c_m = (m - 1/2) d, the centre of its basis function's
    support. B-spline basis functions are C1 with compact support and each term is smooth, so v is C1
    everywhere; local time makes v depend on t only through t - kd, so the same noise gives the same
    motion a multiple of d later and a loop closes smoothly. (The authors' B-spline variant blends
    periods and phases instead, with absolute t: that adds d(p)/dt * t to the frequency, a chirp that
    grows without bound along a long video; it is not reproduced.)

    Every phase omega * p * s is reduced modulo 2 pi in float64 before the float32 sine, so frame 1e6 is
    as exact as frame 0 for the predicted periods (in float32, t = 1e6 would leave ~0.06 frames of time
    resolution). With motion_period P, t is taken modulo P and noise slots modulo P/d: frame t+P
    recomputes exactly what frame t computed.
    """

    def __init__(self,
        c_dim,                          # Label width; a label conditions the motion codes. 0 = unconditional.
        z_dim               = 512,      # Width of the motion noise and of the key codes.
        v_dim               = 512,      # Width of the motion embedding: 2 * number of frequencies.
        motion_z_distance   = 16,       # d: frames between key codes; also the shortest base period.
        kind                = 'bspline',# Blending of neighbouring keys: 'bspline' (StyleSV) or 'linear' (StyleGAN-V).
        max_period_len      = 1024,     # Longest base period of the time encoder, in frames.
        kernel_size         = 11,       # Taps of each of the two temporal convolutions, in key slots.
        lr_multiplier       = 0.01,     # Learning-rate scale of the temporal convolutions.
    ):
        super().__init__()
        assert v_dim % 2 == 0, 'v_dim holds a sine and a cosine per frequency'
        self.c_dim = c_dim
        self.z_dim = z_dim
        self.v_dim = v_dim
        self.motion_z_distance = motion_z_distance
        self.kind = kind
        self.num_keys = num_blended_keys(kind)
        self.reach = kernel_size - 1 # R: code m reads noise slots m-R .. m+R.

        # Temporal network over key slots; the label rides along every slot.
        self.conv0 = TemporalConv1d(z_dim + c_dim, z_dim, kernel_size, lr_multiplier=lr_multiplier)
        self.conv1 = TemporalConv1d(z_dim, z_dim, kernel_size, lr_multiplier=lr_multiplier)

        # Base periods log-spaced from d to max_period_len; predictors without bias (StyleGAN-V: avoids motion collapse).
        num_freqs = v_dim // 2
        period_lens = np.exp2(np.linspace(np.log2(motion_z_distance), np.log2(max_period_len), num_freqs))
        self.register_buffer('freqs', torch.as_tensor(2 * np.pi / period_lens, dtype=torch.float32)) # [num_freqs], rad/frame
        self.register_buffer('phase_scales', torch.as_tensor(max_period_len / period_lens, dtype=torch.float32)) # [num_freqs]
        self.period_predictor = networks_stylegan3.FullyConnectedLayer(z_dim, num_freqs, bias=False)
        self.phase_predictor = networks_stylegan3.FullyConnectedLayer(z_dim, num_freqs, bias=False)
        self.aligner_predictor = networks_stylegan3.FullyConnectedLayer(z_dim, v_dim, bias=False)

    def forward(self, c, t, motion_z=None, motion_seeds=None, motion_period=None):
        """Motion embedding of every frame.

        c: [B, c_dim] labels (ignored when c_dim == 0). t: [B, F] frame times, real numbers.
        motion_z: the 'motion_z' of an earlier call, to repeat it exactly: the noise of the distinct slots
        that call read, in ascending slot order. It fits any t that reads the same pattern of slots: the
        same t, t shifted by a multiple of d, or (with motion_period) by a multiple of P.
        motion_seeds: [B] ints; the noise of slot s of video b is a pure function of (seed b, s).
        motion_period: P, a multiple of d: t is taken modulo P and noise slots modulo P/d, so v(t + P) == v(t).
        Neither motion_z nor motion_seeds: fresh torch.randn noise (training).
        Returns dict(motion_v=[B*F, v_dim] float32, motion_z=[B, distinct slots, z_dim]).
        """
        d = self.motion_z_distance
        misc.assert_shape(t, [None, None])
        batch_size, num_frames = t.shape
        if motion_z is not None and motion_seeds is not None:
            raise ValueError('Pass motion_z or motion_seeds, not both')
        if motion_seeds is not None and len(motion_seeds) != batch_size:
            raise ValueError(f'Expected {batch_size} motion_seeds, got {len(motion_seeds)}')
        if motion_period is not None and (int(motion_period) != motion_period or motion_period <= 0 or motion_period % d != 0):
            raise ValueError(f'motion_period must be a positive multiple of motion_z_distance={d}, got {motion_period}')

        t, keys, u, window = self.frame_keys(t, motion_period)
        noise, motion_z = self.read_noise(window.flatten(1), motion_z, motion_seeds) # [B, F*W, z_dim]
        codes = self.key_codes(noise.reshape(batch_size * num_frames, window.shape[2], self.z_dim), c, num_frames)
        codes = codes.reshape(batch_size, num_frames, self.num_keys, self.z_dim) # [B, F, K, z_dim]

        # Per-key predictions, then the embedding.
        periods = self.period_predictor(codes).tanh() + 1 # [B, F, K, num_freqs]
        phases = self.phase_predictor(codes) * self.phase_scales # [B, F, K, num_freqs]
        aligners = self.aligner_predictor(codes) # [B, F, K, v_dim]
        if self.kind == 'bspline':
            motion_v = self.bspline_embedding(u, periods, phases, aligners)
        else:
            motion_v = self.linear_embedding(t, keys, u, periods, phases, aligners)
        return dict(motion_v=motion_v.reshape(batch_size * num_frames, self.v_dim), motion_z=motion_z)

    def frame_keys(self, t, motion_period=None):
        """Frame times [B, F] -> (t float64, taken modulo motion_period; keys k = floor(t/d) [B, F] int64;
        u = (t mod d)/d [B, F] float32, in [0, 1); window: the noise slots each frame reads, [B, F, K + 2R])."""
        d = self.motion_z_distance
        t = t.to(device=self.freqs.device, dtype=torch.float64) # float64: the remainder stays exact for large t.
        if motion_period is not None:
            t = t % int(motion_period)
        keys = torch.floor(t / d) # [B, F]
        u = ((t - keys * d) / d).to(torch.float32) # [B, F]
        keys = keys.to(torch.int64)

        # Each frame's K keys k..k+K-1 read noise slots k-R .. k+K-1+R: a window of W = K + 2R slots.
        window = keys.unsqueeze(2) - self.reach + torch.arange(self.num_keys + 2 * self.reach, device=keys.device) # [B, F, W]
        if motion_period is not None:
            window = window % (int(motion_period) // d)
        return t, keys, u, window

    def read_noise(self, slots, motion_z, motion_seeds):
        """Noise at slots [B, N] (with repeats) -> ([B, N, z_dim], motion_z: the distinct slots' noise).

        Only the slots read are drawn, so frame 1,000,000 costs what frame 0 costs, whatever other
        frames share the call.
        """
        batch_size = slots.shape[0]
        distinct, rank = distinct_slots(slots)
        num_distinct = distinct.shape[1]

        if motion_z is None and motion_seeds is None:
            motion_z = torch.randn([batch_size, num_distinct, self.z_dim], device=slots.device)
        elif motion_z is None:
            motion_z = seeded_noise([int(s) for s in motion_seeds], distinct, self.z_dim).to(slots.device)
        elif list(motion_z.shape) != [batch_size, num_distinct, self.z_dim]:
            raise ValueError(f'motion_z of shape {list(motion_z.shape)} does not fit these times: '
                f'they read {num_distinct} distinct noise slots per video, [{batch_size}, {num_distinct}, {self.z_dim}]')
        motion_z = motion_z.to(device=slots.device, dtype=torch.float32)
        return motion_z.gather(1, rank.unsqueeze(2).expand(-1, -1, self.z_dim)), motion_z

    def key_codes(self, noise, c, num_frames):
        """Noise windows [B*F, W, z_dim] (and labels [B, c_dim]) -> key codes [B*F, K, z_dim]."""
        x = noise
        if self.c_dim > 0:
            misc.assert_shape(c, [noise.shape[0] // num_frames, self.c_dim])
            c = c.to(x).repeat_interleave(num_frames, dim=0) # [B*F, c_dim]
            x = torch.cat([x, c.unsqueeze(1).expand(-1, x.shape[1], -1)], dim=2) # [B*F, W, z_dim + c_dim]
        x = self.conv1(self.conv0(x.permute(0, 2, 1))) # [B*F, z_dim, K]
        return x.permute(0, 2, 1)

    def key_embeddings(self, s, periods, phases):
        """[sin, cos](omega * p * s + phi): times s [...] (float64), periods and phases [..., num_freqs] -> [..., v_dim].
        omega * p * s is reduced modulo 2 pi in float64 (exact for float32 p at any s) before the float32 sine."""
        turns = self.freqs.double() * periods.double() * s.unsqueeze(-1) # [..., num_freqs], radians
        angles = (turns - (2 * np.pi) * torch.floor(turns / (2 * np.pi))).to(torch.float32) + phases
        return torch.cat([angles.sin(), angles.cos()], dim=-1)

    def bspline_embedding(self, u, periods, phases, aligners):
        """sum_j w_j(u) [e_{k+j} + a_{k+j}], each key's sinusoid in time relative to the centre of its basis function."""
        local_t = (u.double().unsqueeze(2) - torch.arange(self.num_keys, device=u.device) + 0.5) * self.motion_z_distance # [B, F, K]
        embeddings = self.key_embeddings(local_t, periods, phases) + aligners # [B, F, K, v_dim]
        return (blend_weights(u, 'bspline').unsqueeze(3) * embeddings).sum(dim=2) # [B, F, v_dim]

    def linear_embedding(self, t, keys, u, periods, phases, aligners):
        """StyleGAN-V, absolute time: e_k(t) minus its linear interpolation between the knots kd and kd+d, plus
        interpolated aligners. t [B, F] float64, keys [B, F]."""
        p, phi = periods[:, :, 0], phases[:, :, 0] # from key k: [B, F, num_freqs]
        knot_times = (keys * self.motion_z_distance).unsqueeze(2) + torch.tensor([0, self.motion_z_distance], device=keys.device) # [B, F, 2]
        knots = self.key_embeddings(knot_times.double(), p.unsqueeze(2), phi.unsqueeze(2)) # [B, F, 2, v_dim]
        weights = blend_weights(u, 'linear').unsqueeze(3) # [B, F, 2, 1]
        return self.key_embeddings(t, p, phi) + (weights * (aligners - knots)).sum(dim=2) # [B, F, v_dim]

    def extra_repr(self):
        return (f'c_dim={self.c_dim:d}, z_dim={self.z_dim:d}, v_dim={self.v_dim:d}, '
            f'motion_z_distance={self.motion_z_distance}, kind={self.kind}')

#----------------------------------------------------------------------------
