"""Motion meter: does the video generator move as the data moves, and smoothly? Two cheap numbers per tick.

A video GAN can fail quietly: healthy losses while G draws near-still videos, or motion that turns at every key
frame (the periodic jitter of linear motion codes, Zhang et al., arXiv 2212.07413, Sec. 3.3). The meter measures
G_ema on a few fixed inputs at every tick of the video stage:

- `Motion/ratio`: mean |x(t+1) - x(t)| over pixels and consecutive frames of G_ema's clips, divided by the same of
  real clips of as many consecutive frames (computed once). About 1 when G moves as much as the data; 0 for still
  videos, which is where a video stage starts (the motion mask is zero).
- `Motion/jerk`: the key-frame jerk of the motion embedding, the quantity of the `jerk_kf` metric on a few videos.
  About 0.03 for C1 (B-spline) motion; well above 1 when the motion kinks at every key frame.

Training's random streams are left alone: fixed inputs, seeded generators, and the global RNG states restored.
"""

import numpy as np
import torch

import dnnlib
from svc_plugin import previews
from svc_plugin import training_state
from svc_plugin import video_io
from svc_plugin.metrics import fvd
from svc_plugin.metrics import smoothness

#----------------------------------------------------------------------------

class MotionMeter:
    """Motion/ratio and Motion/jerk of a video generator, on fixed inputs; the real clips' speed measured once."""

    def __init__(self,
        training_set,               # Video dataset (svc_plugin.dataset.VideoFramesFolderDataset).
        dataset_kwargs,             # Its constructor kwargs, for the labels of the jerk videos.
        z_dim,                      # Generator's content code size.
        device,                     # Where G_ema runs.
        videos          = 4,        # Generated clips per measurement: the first cells of the preview grid.
        frames          = 4,        # Consecutive frames per clip, generated and real.
        real_videos     = 64,       # Real clips (at most one per video) for the real side.
        jerk_videos     = 4,        # Videos of the key-frame jerk.
        jerk_periods    = 1,        # Key-frame periods per jerk video.
        seed            = 0,        # Seed of every draw: the real clips, the labels, the jerk's motion seeds.
    ):
        self.frames = frames
        self.jerk_videos, self.jerk_periods, self.seed = jerk_videos, jerk_periods, seed
        self.z, self.c = previews.video_inputs(training_set, z_dim, videos, seed, device)
        self.opts = dnnlib.EasyDict(device=device, num_gpus=1, rank=0, dataset_kwargs=dataset_kwargs) # For smoothness' helpers.
        self.real_speed = mean_frame_change(real_clips(training_set, real_videos, frames, seed))

    def measure(self, G):
        """{'Motion/ratio': ..., 'Motion/jerk': ...} of video generator G (in eval mode, no grad)."""
        t = torch.arange(self.frames, dtype=torch.float32) # [frames]
        with torch.no_grad():
            (clips,) = video_io.render_video_chunks(G, self.z, self.c, t, list(range(self.z.shape[0])), self.frames, noise_mode='const')
        with training_state.random_streams_kept():
            torch.manual_seed(self.seed) # compute_key_frame_jerk draws its motion seeds from torch's global RNG.
            jerk = smoothness.compute_key_frame_jerk(dnnlib.EasyDict(self.opts, G=G), num_videos=self.jerk_videos, periods=self.jerk_periods)
        return {'Motion/ratio': mean_frame_change(clips) / max(self.real_speed, 1e-8), 'Motion/jerk': jerk}

#----------------------------------------------------------------------------

def mean_frame_change(clips):
    """Mean |x(t+1) - x(t)| of clips [N, F, C, H, W] in [-1, 1] units, as a float."""
    clips = torch.as_tensor(clips, dtype=torch.float32)
    return float((clips[:, 1:] - clips[:, :-1]).abs().mean())

def real_clips(training_set, videos, frames, seed):
    """Real clips [N, frames, C, H, W] in [-1, 1]: one of `frames` consecutive frames from each of up to `videos`
    videos, at offsets drawn from RandomState(seed) (FVD's choice of real clips)."""
    video_indices, frame_indices = fvd.select_real_clips(training_set.video_names, training_set.video_lengths, videos, frames, subsample=1, seed=seed)
    if len(video_indices) == 0:
        raise ValueError(f'the motion meter needs a video of at least {frames} frames')
    clips = np.stack([training_set.load_video_frames(int(v), f.tolist()) for v, f in zip(video_indices, frame_indices)])
    return torch.from_numpy(clips).to(torch.float32) / 127.5 - 1

#----------------------------------------------------------------------------
