"""Stand-ins for the video metric tests: a tiny TorchScript FVD detector, replaying generators, small datasets."""

import os
import warnings

import numpy as np
import PIL.Image
import torch

#----------------------------------------------------------------------------

class TinyVideoDetector(torch.nn.Module):
    """Fixed random features of a clip with the I3D call convention: x [N, 3, T, H, W] in [0, 255] -> [N, num_features].

    Features mix per-channel statistics of the frames (2x2 pooled means, temporal variation), so they
    react to content and motion, and do not depend on the clip length.
    """
    def __init__(self, num_features=8, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.register_buffer('weight', torch.randn([num_features, 18], generator=g) / 18 ** 0.5)

    def forward(self, x, rescale: bool = True, resize: bool = True, return_features: bool = True):
        if rescale:
            x = x / 127.5 - 1
        if resize:
            x = torch.nn.functional.interpolate(x, size=(x.shape[2], 8, 8), mode='trilinear', align_corners=False)
        pooled = torch.nn.functional.adaptive_avg_pool3d(x, (1, 2, 2)).flatten(1) # [N, 12]
        motion = (x[:, :, 1:] - x[:, :, :-1]).abs().mean(dim=[2, 3, 4]) # [N, 3]
        spread = x.mean(dim=[3, 4]).std(dim=2) # [N, 3]
        return torch.tanh(torch.cat([pooled, motion, spread], dim=1) @ self.weight.t() * 3)

def save_video_detector(path, **kwargs):
    """The detector as a TorchScript file, the form --i3d takes."""
    with warnings.catch_warnings(): # TorchScript is deprecated in favour of torch.export, but it is the format of StyleGAN-V's I3D.
        warnings.simplefilter('ignore', DeprecationWarning)
        torch.jit.save(torch.jit.script(TinyVideoDetector(**kwargs).eval()), str(path))
    return str(path)

#----------------------------------------------------------------------------

def random_videos(num_videos, frames, resolution=16, seed=0):
    """uint8 [videos, frames, 3, H, W]: smooth random patterns moving over time."""
    rnd = np.random.RandomState(seed)
    base = rnd.randint(0, 256, [num_videos, 1, 3, resolution // 4, resolution // 4]).astype(np.float32)
    drift = rnd.randn(num_videos, 1, 3, 1, 1).astype(np.float32) * 12
    x = base + drift * np.arange(frames, dtype=np.float32).reshape(1, frames, 1, 1, 1)
    x = x.repeat(4, axis=3).repeat(4, axis=4)
    return np.clip(x, 0, 255).astype(np.uint8)

def write_video_folder(root, videos, names=None):
    """A video dataset folder: one sub-folder of PNG frames per video (names default to video00000, ...)."""
    os.makedirs(root, exist_ok=True)
    for i, video in enumerate(videos):
        folder = os.path.join(root, names[i] if names is not None else f'video{i:05d}')
        os.makedirs(folder, exist_ok=True)
        for f, frame in enumerate(video):
            PIL.Image.fromarray(np.ascontiguousarray(frame.transpose(1, 2, 0))).save(os.path.join(folder, f'{f:06d}.png'))
    return str(root)

#----------------------------------------------------------------------------

class DummyMotionEncoder(torch.nn.Module):
    """Marks a generator as a video generator (metrics look for synthesis.motion_encoder)."""
    kind = 'replay'

class DummySynthesis(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.motion_encoder = DummyMotionEncoder()

class ReplayVideoGenerator(torch.nn.Module):
    """Plays back given uint8 videos in order, plus `perturbation` times fixed noise: G(z, c, t) -> [B*F, C, H, W].

    A call whose times start at 0 starts the next videos; a later chunk (t[0] > 0) continues the same ones.
    Quantised output reproduces the stored uint8 frames exactly when perturbation is 0.
    """
    def __init__(self, videos, perturbation=0.0, seed=0):
        super().__init__()
        videos = torch.as_tensor(np.asarray(videos), dtype=torch.float32)
        self.z_dim, self.c_dim, self.w_dim = 4, 0, 4
        self.img_channels, self.img_resolution = videos.shape[2], videos.shape[3]
        self.motion_z_distance = 4
        self.synthesis = DummySynthesis()
        noise = torch.randn(videos.shape, generator=torch.Generator().manual_seed(seed))
        self.register_buffer('videos', (videos - 127.5) / 127.5 + perturbation * noise) # Quantises back to the uint8 frames.
        self.next_video = 0
        self.current = None

    def forward(self, z, c, t=None, **_kwargs):
        if t is None:
            t = torch.zeros([z.shape[0], 1])
        if self.current is None or float(t[0, 0]) == 0:
            self.current = (torch.arange(z.shape[0]) + self.next_video) % self.videos.shape[0]
            self.next_video += z.shape[0]
        frames = self.videos[self.current.unsqueeze(1), t.long().cpu()] # [B, F, C, H, W]
        return frames.flatten(0, 1).to(z.device)

#----------------------------------------------------------------------------

def tiny_video_generator(kind='bspline', motion_mask=1.0, seed=0):
    """A small randomly initialised VideoGenerator (16x16, key frames every 16 frames) whose motion reaches the pixels."""
    from svc_plugin.networks import VideoGenerator # pylint: disable=import-outside-toplevel
    torch.manual_seed(seed)
    G = VideoGenerator(z_dim=16, c_dim=0, w_dim=16, img_resolution=16, img_channels=3, channel_base=1024, channel_max=8,
        num_layers=2, num_critical=1, motion_kwargs=dict(z_dim=16, v_dim=16, motion_z_distance=16, kind=kind))
    with torch.no_grad():
        G.synthesis.motion_mask.fill_(motion_mask)
    return G.eval().requires_grad_(False)

#----------------------------------------------------------------------------
