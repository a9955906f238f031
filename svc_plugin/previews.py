"""Previews of a training run, for a person to look at: png grids of images (image stage, as upstream) and mp4 grids
of videos (video stage), of the real data and of G_ema at snapshots."""

import os

import numpy as np
import PIL.Image
import torch

from training.training_loop import save_image_grid
from training.training_loop import setup_snapshot_image_grid
from svc_plugin import fileio
from svc_plugin import runs
from svc_plugin import video_io

#----------------------------------------------------------------------------

class Previews:
    """What G_ema makes, for a person to look at: reals.* and fakes_init.* at the start, fakes<kimg>.* at image
    snapshots. The image stage writes png grids (upstream's grid cropped to at most `grid` = (columns, rows)), the video
    stage mp4 grids of grid videos at t = 0, 1, 2, ... The inputs are fixed (z and motion noise of cell i seeded by i),
    so successive previews show the same images and videos."""

    def __init__(self, run_dir, training_set, z_dim, frames, grid, num_frames, batch_gpu, random_seed, device):
        self.run_dir = run_dir
        self.video = (frames > 1)
        self.num_frames = num_frames
        self.batch_gpu = batch_gpu
        self.fps = training_set.fps or video_io.DEFAULT_FPS
        if self.video:
            self.grid = grid
            self.z, self.c = video_inputs(training_set, z_dim, grid[0] * grid[1], random_seed, device)
        else:
            self.grid, self.reals, labels = cropped_image_grid(training_set, grid, random_seed)
            self.z, self.c = seeded_latents(z_dim, len(labels), device), torch.from_numpy(labels).to(device)

    def save_reals(self, training_set):
        if self.video:
            save_reals_video(os.path.join(self.run_dir, 'reals.mp4'), training_set, self.num_frames, self.grid, self.fps)
        else:
            save_png_grid(self.reals, os.path.join(self.run_dir, 'reals.png'), [0, 255], self.grid)

    def save(self, G_ema, name):
        """fakes<name>.mp4 (video stage) or fakes<name>.png (image stage). Returns a still of it for TensorBoard,
        uint8 [H, W, C] at most THUMBNAIL_SIZE wide: a strip of frames per video (video stage), the grid (image stage)."""
        if self.video:
            strips = save_preview_video(os.path.join(self.run_dir, f'fakes{name}.mp4'), G_ema, self.z, self.c, self.num_frames, self.grid, self.fps)
            return thumbnail(frame_strips(strips))
        with torch.no_grad():
            images = [G_ema(z=z, c=c, noise_mode='const').cpu() for z, c in zip(self.z.split(self.batch_gpu), self.c.split(self.batch_gpu))]
        images = torch.cat(images)
        save_png_grid(images.numpy(), os.path.join(self.run_dir, f'fakes{name}.png'), [-1, 1], self.grid)
        return thumbnail(video_io.tile_clips(video_io.to_uint8(images).unsqueeze(1), self.grid)[0])

#----------------------------------------------------------------------------
# Fixed inputs.

def seeded_latents(z_dim, count, device):
    """z [count, z_dim] of cells 0..count-1, cell i drawn from RandomState(i): the same z whatever the grid size."""
    return torch.from_numpy(np.stack([np.random.RandomState(seed).randn(z_dim) for seed in range(count)])).to(device, torch.float32)

def video_inputs(training_set, z_dim, count, random_seed, device):
    """(z [count, z_dim], c [count, c_dim]) of the first `count` preview videos: seeded z, labels of clips drawn from
    RandomState(random_seed)."""
    labels = np.stack([training_set.get_label(i) for i in np.random.RandomState(random_seed).randint(len(training_set), size=count)])
    return seeded_latents(z_dim, count, device), torch.from_numpy(labels).to(device)

#----------------------------------------------------------------------------
# Stills for TensorBoard.

THUMBNAIL_SIZE  = 1024  # Widest still, in pixels: a run's events file stays small.
STRIP_FRAMES    = 8     # Frames per video in a strip.

def frame_strips(strips):
    """uint8 [videos, frames, C, H, W] -> [videos * H, frames * W, C]: one row of frames per video."""
    V, F = strips.shape[:2]
    return video_io.tile_clips(strips.reshape(V * F, 1, *strips.shape[2:]), (F, V))[0]

def thumbnail(image):
    """uint8 [H, W, C] scaled down (box filter) to at most THUMBNAIL_SIZE wide."""
    height, width, channels = image.shape
    if width <= THUMBNAIL_SIZE:
        return image
    size = (THUMBNAIL_SIZE, max(round(height * THUMBNAIL_SIZE / width), 1))
    small = PIL.Image.fromarray(image[:, :, 0] if channels == 1 else image).resize(size, PIL.Image.BOX)
    return np.asarray(small).reshape(size[1], size[0], channels)

#----------------------------------------------------------------------------
# Image grids.

class FirstFrames:
    """A clip dataset seen as the image dataset setup_snapshot_image_grid expects: items (image [C, H, W], label)."""
    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, idx):
        clip, label, _times = self.dataset[idx]
        return clip[0], label

    def __getattr__(self, name):
        return getattr(self.dataset, name)

def cropped_image_grid(training_set, max_grid, random_seed):
    """Upstream's grid of real frames ((gw, gh), images [N, C, H, W], labels), cropped to at most max_grid = (cols, rows)."""
    (gw, gh), images, labels = setup_snapshot_image_grid(FirstFrames(training_set), random_seed=random_seed)
    cols, rows = min(gw, max_grid[0]), min(gh, max_grid[1])
    keep = (np.arange(rows)[:, None] * gw + np.arange(cols)).reshape(-1) # Row-major cells of the top-left corner.
    return (cols, rows), images[keep], labels[keep]

def save_png_grid(images, path, drange, grid):
    """Upstream's save_image_grid, under a temporary name ending in .png (PIL picks the format by the extension)."""
    fileio.replace_atomically(path, lambda tmp_path: save_image_grid(images, tmp_path, drange=drange, grid_size=grid), suffix='.png', hint=runs.RESUME_HINT)

#----------------------------------------------------------------------------
# Video grids.

def save_preview_video(path, G_ema, z, c, num_frames, grid, fps, frames_per_call=16):
    """mp4 grid of G_ema's videos at t = 0, 1, 2, ...; the motion noise of video i is seeded by i, so chunks in time
    join seamlessly. Returns STRIP_FRAMES frames of each video evenly spaced in time, uint8 [videos, frames, C, H, W]."""
    t = torch.arange(num_frames, dtype=torch.float32) # [frames]
    kept = set(np.linspace(0, num_frames - 1, STRIP_FRAMES).round().astype(int).tolist())
    chunks = video_io.render_video_chunks(G_ema, z, c, t, list(range(z.shape[0])), frames_per_call, noise_mode='const')
    strips = []
    with video_io.Mp4Writer(path, fps=fps) as writer:
        for first, clips in zip(range(0, num_frames, frames_per_call), chunks): # [videos, frames, C, H, W]
            clips = video_io.to_uint8(clips).cpu()
            writer.write(video_io.tile_clips(clips, grid))
            strips += [clips[:, i - first] for i in range(first, first + clips.shape[1]) if i in kept]
    return torch.stack(strips, dim=1)

def save_reals_video(path, training_set, num_frames, grid, fps):
    """mp4 grid of the first frames of the first videos of the dataset (looped when shorter), to compare with previews."""
    lengths = training_set.video_lengths
    clips = [training_set.load_video_frames(v % len(lengths), np.arange(num_frames) % lengths[v % len(lengths)]) for v in range(grid[0] * grid[1])]
    video_io.write_video(path, video_io.tile_clips(np.stack(clips), grid), fps=fps) # clips: [videos, frames, C, H, W]

#----------------------------------------------------------------------------
