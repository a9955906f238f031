"""Smoothness of generated motion at key frames: the periodic jitter that FVD barely sees.

The motion code of frame t blends random key codes placed every d = G.motion_z_distance frames. Linear
blending (StyleGAN-V) has a kink at every key frame, so the motion changes direction abruptly every d
frames; the quadratic B-spline of StyleSV is C1 there (Zhang et al., arXiv 2212.07413, B-spline based motion representation). Both metrics below are
computed on generated videos from t = 0, and are near their no-jitter level for C1 motion:

- `jerk_kf`, key-frame jerk of the motion embedding v(t) (motion_v of G.synthesis.motion_encoder; t is
  real-valued). The jump of its derivative at key frame t_k, |v(t_k + h) - 2 v(t_k) + v(t_k - h)| / h with
  h = 1/32 frame (the difference of the one-sided derivatives), relative to the typical change of the
  derivative over one frame between key frames, |v(t + 1) - 2 v(t) + v(t - 1)| at integer t that are not
  key frames; means over videos and key frames. C1 motion (B-spline) scores O(h), about 0.03; a kink at
  every key frame (linear) scores the size of the jump in units of that typical change, well above 1.
  Only the motion encoder runs: cheap, and independent of the motion mask.
- `jitter_kf`, key-frame periodicity in pixels. e(t) = mean over pixels of (x(t+1) - 2 x(t) + x(t-1))^2,
  the energy of the change between consecutive frame differences: a kink turns the motion, so it shows
  in second differences, while the energy of first differences (a speed) is about the same on both sides
  of a key frame. jitter_kf is the share of the power spectrum of e(t) (mean removed, n*d values over n
  key-frame periods) at the key-frame frequency 1/d and its harmonics: d/2 of the n*d/2 frequency bins,
  so a signal without d-periodicity scores about 1/n (1/16 here) and a jerk at every key frame pushes it
  towards 1. It needs nothing but frames, and sees only the motion that reaches the pixels: NaN when none
  does (a fresh video generator, whose motion mask is zero).
"""

import copy

import torch

from metrics import metric_main
from metrics import metric_utils
from torch_utils import misc
from svc_plugin import checkpoint
from svc_plugin.metrics import fvd

#----------------------------------------------------------------------------

JERK_VIDEOS     = 256   # Videos for jerk_kf.
JERK_PERIODS    = 8     # Key-frame periods per video for jerk_kf.
JERK_STEP       = 1/32  # Step of the one-sided derivatives at key frames, in frames.
JITTER_VIDEOS   = 32    # Videos for jitter_kf.
JITTER_PERIODS  = 16    # Key-frame periods per video for jitter_kf (frequency resolution 1/16 of the key-frame rate).
MOTION_FLOOR    = 1e-10 # Mean e(t) below which no motion reaches the pixels (1e-5 RMS, in units where pixels span [-1, 1]).

#----------------------------------------------------------------------------

def second_difference(x):
    """x [batch, frames, ...] -> x(t+1) - 2 x(t) + x(t-1) for t = 1..frames-2, [batch, frames - 2, ...]."""
    return x[:, 2:] - 2 * x[:, 1:-1] + x[:, :-2]

def video_slices(opts, num_videos, batch):
    """Numbers of videos per step of this rank; every rank takes the same number of steps."""
    per_rank = -(-num_videos // opts.num_gpus)
    return [min(batch, per_rank - start) for start in range(0, per_rank, batch)]

def all_ranks_sum(x, opts):
    """Sum of a float64 tensor over the ranks."""
    if opts.num_gpus > 1:
        torch.distributed.all_reduce(x)
    return x

#----------------------------------------------------------------------------

def compute_key_frame_jerk(opts, num_videos=JERK_VIDEOS, periods=JERK_PERIODS, batch=64):
    """jerk_kf: mean jump of d motion_v / dt at key frames / mean change of it over one frame elsewhere."""
    G = copy.deepcopy(opts.G).eval().requires_grad_(False).to(opts.device)
    d = G.motion_z_distance
    centres = torch.arange(1, periods * d + 1, dtype=torch.float64) # [frames]
    offsets = torch.tensor([-1, -JERK_STEP, 0, JERK_STEP, 1], dtype=torch.float64)
    t = (centres.unsqueeze(1) + offsets).flatten() # [frames * 5]
    is_key = (centres % d == 0).to(opts.device)
    sums = torch.zeros([2], dtype=torch.float64, device=opts.device) # Sum of jumps at key frames, of changes elsewhere.
    c_iter = metric_utils.iterate_random_labels(opts=opts, batch_size=batch)
    for num in video_slices(opts, num_videos, batch):
        seeds = torch.randint(0, 2**31 - 1, [num]).tolist()
        with torch.no_grad():
            v = G.synthesis.motion_encoder(next(c_iter)[:num], t.unsqueeze(0).repeat([num, 1]), motion_seeds=seeds)['motion_v']
        v = v.double().reshape([num, centres.numel(), offsets.numel(), -1]) # [videos, frames, offsets, v_dim]
        jump = (v[:, :, 3] - 2 * v[:, :, 2] + v[:, :, 1]).norm(dim=2) / JERK_STEP # [videos, frames]
        change = (v[:, :, 4] - 2 * v[:, :, 2] + v[:, :, 0]).norm(dim=2) # [videos, frames]
        sums += torch.stack([jump[:, is_key].sum(), change[:, ~is_key].sum()])
    sums = all_ranks_sum(sums, opts)
    num_key = int(is_key.sum())
    return float((sums[0] / num_key) / (sums[1] / (is_key.numel() - num_key)))

def compute_key_frame_jitter(opts, num_videos=JITTER_VIDEOS, periods=JITTER_PERIODS):
    """jitter_kf: share of the spectral power of the per-frame motion-change energy at multiples of 1/d."""
    G = copy.deepcopy(opts.G).eval().requires_grad_(False).to(opts.device)
    d = G.motion_z_distance
    t = torch.arange(periods * d + 2, dtype=torch.float32)
    c_iter = metric_utils.iterate_random_labels(opts=opts, batch_size=1)
    power = torch.zeros([periods * d // 2 + 1], dtype=torch.float64, device=opts.device) # Spectrum summed over videos.
    energy_sum = torch.zeros([], dtype=torch.float64, device=opts.device)
    for num in video_slices(opts, num_videos, batch=1):
        z = torch.randn([num, G.z_dim]).to(opts.device)
        with torch.no_grad():
            frames = fvd.generate_video(G, z, next(c_iter)[:num], t, **opts.G_kwargs) # [1, frames, C, H, W]
        energy = second_difference(frames.double()).square().mean(dim=[2, 3, 4]) # [1, periods * d]
        energy_sum += energy.sum()
        power += torch.fft.rfft(energy - energy.mean(dim=1, keepdim=True), dim=1).abs().square().sum(dim=0)
    power, energy = all_ranks_sum(power, opts), all_ranks_sum(energy_sum, opts)
    if energy / (num_videos * periods * d) < MOTION_FLOOR:
        return float('nan') # No motion reaches the pixels: the spectrum would be round-off.
    harmonics = torch.arange(periods, power.numel(), periods, device=opts.device) # Bins of frequencies m/d, m >= 1.
    return float(power[harmonics].sum() / power[1:].sum())

#----------------------------------------------------------------------------

def require_video_generator(G):
    if not checkpoint.is_video_generator(G):
        raise ValueError('smoothness metrics need a video generator; this one has no motion encoder')

@metric_main.register_metric
def jerk_kf(opts):
    require_video_generator(opts.G)
    return dict(jerk_kf=compute_key_frame_jerk(opts, num_videos=JERK_VIDEOS, periods=JERK_PERIODS))

@metric_main.register_metric
def jitter_kf(opts):
    require_video_generator(opts.G)
    return dict(jitter_kf=compute_key_frame_jitter(opts, num_videos=JITTER_VIDEOS, periods=JITTER_PERIODS))

def describe_protocol(name, G):
    """Every setting that determines the value of jerk_kf or jitter_kf, for the record written beside the result."""
    videos, periods = dict(jerk_kf=(JERK_VIDEOS, JERK_PERIODS), jitter_kf=(JITTER_VIDEOS, JITTER_PERIODS))[name]
    return dict(
        videos              = videos,
        frames              = periods * G.motion_z_distance + 2,
        key_frame_distance  = G.motion_z_distance,
        motion_kind         = motion_kind(G),
        measures            = dict(
            jerk_kf     = f'mean jump of d motion_v/dt at key frames (one-sided differences, step {JERK_STEP:g} frame) / mean '
                          '|second difference of motion_v| at the other integer frames (C1 motion: about 0; kinks: > 1)',
            jitter_kf   = f'share of the power spectrum of e(t) = mean over pixels of (x(t+1) - 2x(t) + x(t-1))^2 at multiples of '
                          f'1/d (no d-periodicity: about 1/{periods})')[name],
    )

def with_motion_kind(G, kind):
    """The same weights with another motion blending ('bspline' or 'linear'): G rebuilt from its constructor
    arguments with motion_kwargs.kind replaced, then every parameter and buffer copied over."""
    kwargs = G.init_kwargs
    kwargs.motion_kwargs = dict(kwargs.get('motion_kwargs', {}), kind=kind)
    G_kind = type(G)(*G.init_args, **kwargs).eval().requires_grad_(False)
    misc.copy_params_and_buffers(G, G_kind, require_all=True)
    return G_kind.to(next(G.parameters()).device)

def motion_kind(G):
    """The motion blending ('bspline' or 'linear') of a video generator; None for an image generator."""
    return G.synthesis.motion_encoder.kind if checkpoint.is_video_generator(G) else None

#----------------------------------------------------------------------------
