"""FID over video frames, as StyleGAN-V and StyleSV report it (`fid50k_full` of StyleGAN-V's metric code, universome/stylegan-v).

Real images: every frame of every training video (an ImageFolderDataset over the same path: it walks the
video sub-folders), no x-flip. Generated images: 50,000 frames = 3,125 videos x 16 consecutive frames at
t = 0..15, z ~ N(0, I), no truncation. The upstream statistics code (metrics.metric_utils) runs unchanged:
it sees the video generator through FrameStream, an image-generator view whose calls return the
successive frames of successive videos.

Importing this module replaces the registry's `fid50k_full` by `fid50k_full` below, which also accepts
video generators and video datasets. With an image generator on an image dataset it computes what the
upstream metric computes, with the same detector, cache and statistics.
"""

import math
import os

import numpy as np
import torch

import dnnlib
from metrics import metric_main
from metrics import metric_utils
from svc_plugin import checkpoint
from svc_plugin import fileio
from svc_plugin.metrics import frechet
from svc_plugin.metrics import fvd

#----------------------------------------------------------------------------

INCEPTION_URL       = 'https://api.ngc.nvidia.com/v2/models/nvidia/research/stylegan3/versions/1/files/metrics/inception-2015-12-05.pkl'
INCEPTION_ENV       = 'STYLESV_INCEPTION' # A local detector file (or another URL) to use instead of INCEPTION_URL.
FRAMES_PER_VIDEO    = 16    # Generated frames t = 0..15 of each video (StyleGAN-V: 3,125 videos for 50k frames).

#----------------------------------------------------------------------------

class FrameStream(torch.nn.Module):
    """A video generator called like an image generator: G(z, c) -> the next z.shape[0] frames of a stream.

    The stream is made of videos of `frames_per_video` consecutive frames from t = 0; a video takes its
    content code and label from the row of the call that starts it. Labels come from `labels` (the video
    dataset's) when the generator is conditional.
    """
    def __init__(self,
        G,                                  # Video generator, G(z, c, t) -> [batch * frames, C, H, W].
        frames_per_video    = FRAMES_PER_VIDEO, # Frames of each video, t = 0, 1, ...
        labels              = None,         # Labels to draw c from, float [num, c_dim]; None = use the caller's c.
    ):
        super().__init__()
        self.G = G
        self.z_dim, self.c_dim = G.z_dim, G.c_dim
        self.img_resolution, self.img_channels = G.img_resolution, G.img_channels
        self.frames_per_video = frames_per_video
        self.labels = None if labels is None else torch.as_tensor(labels, dtype=torch.float32)
        self.pending = None # Frames generated but not yet returned, [frames, C, H, W].

    def forward(self, z, c, **G_kwargs):
        out = []
        while sum(x.shape[0] for x in out) < z.shape[0]:
            if self.pending is None or self.pending.shape[0] == 0:
                self.pending = self.next_videos(z, c, -(-z.shape[0] // self.frames_per_video), **G_kwargs)
            need = z.shape[0] - sum(x.shape[0] for x in out)
            out.append(self.pending[:need])
            self.pending = self.pending[need:]
        return torch.cat(out)

    def next_videos(self, z, c, num_videos, **G_kwargs):
        """[num_videos * frames_per_video, C, H, W] frames of new videos with the first rows' z (and c)."""
        if self.labels is not None:
            c = self.labels[torch.randint(self.labels.shape[0], [num_videos])].to(z.device)
        t = torch.arange(self.frames_per_video, dtype=torch.float32)
        return fvd.generate_video(self.G, z[:num_videos], c[:num_videos], t, **G_kwargs).flatten(0, 1)

#----------------------------------------------------------------------------

def is_video_dataset(dataset_kwargs):
    return hasattr(dnnlib.util.get_obj_by_name(dataset_kwargs.class_name), 'load_video_frames')

def dataset_labels(dataset_kwargs):
    """Every label of a dataset, float [num, label_dim]."""
    dataset = dnnlib.util.construct_class_by_name(**dataset_kwargs)
    return np.stack([dataset.get_label(idx) for idx in range(len(dataset))])

def frame_options(opts):
    """The options in the form the image metrics take: FrameStream for a video G, every frame of a video dataset."""
    if checkpoint.is_video_generator(opts.G):
        opts.G = FrameStream(opts.G, labels=(dataset_labels(opts.dataset_kwargs) if opts.G.c_dim > 0 else None))
    if is_video_dataset(opts.dataset_kwargs):
        opts.dataset_kwargs = dnnlib.EasyDict(class_name='training.dataset.ImageFolderDataset', path=opts.dataset_kwargs.path,
            resolution=opts.dataset_kwargs.get('resolution'), use_labels=False)
    opts.dataset_kwargs.update(max_size=None, xflip=False)
    return opts

def inception_location():
    """The detector to load: $STYLESV_INCEPTION if set, else INCEPTION_URL.

    Resolved here rather than left to the upstream layer: NVIDIA's metric_utils loads whatever detector_url
    it is given, so without this a local detector would be ignored and the published one downloaded.
    """
    return os.environ.get(INCEPTION_ENV) or INCEPTION_URL

def close_inherited_files(_worker_id):
    """DataLoader worker_init_fn: drop the zip handle that a forked worker inherits from the dataset's constructor.

    NVIDIA's ImageFolderDataset opens the zip to read its first image and keeps it open; forked workers then
    share one file offset and their concurrent reads fail ('Bad CRC-32'). After close() each reopens its own.
    """
    torch.utils.data.get_worker_info().dataset.close()

def real_loader_kwargs(opts):
    """DataLoader options for the real frames: metric_utils' defaults, with a zip handle per worker."""
    return dict(pin_memory=(opts.device.type == 'cuda'), num_workers=min(3, os.cpu_count() or 1), prefetch_factor=2,
        worker_init_fn=close_inherited_files)

def compute_frame_fid(opts, num_gen):
    """FID of all real frames against num_gen generated frames (NaN on ranks other than 0)."""
    opts = frame_options(opts)
    detector_kwargs = dict(return_features=True) # 2048-d pool features.
    detector_url = inception_location()
    mu_real, sigma_real = metric_utils.compute_feature_stats_for_dataset(opts=opts, detector_url=detector_url,
        detector_kwargs=detector_kwargs, rel_lo=0, rel_hi=0, data_loader_kwargs=real_loader_kwargs(opts), capture_mean_cov=True, max_items=None).get_mean_cov()
    mu_gen, sigma_gen = metric_utils.compute_feature_stats_for_generator(opts=opts, detector_url=detector_url,
        detector_kwargs=detector_kwargs, rel_lo=0, rel_hi=1, capture_mean_cov=True, max_items=num_gen).get_mean_cov()
    if opts.rank != 0:
        return float('nan')
    return frechet.frechet_distance(mu_gen, sigma_gen, mu_real, sigma_real)

@metric_main.register_metric
def fid50k_full(opts):
    return dict(fid50k_full=compute_frame_fid(opts, num_gen=50000))

def describe_protocol(num_gen=50000):
    """Every setting that determines the value of fid50k_full, for the record written beside the result."""
    location = inception_location()
    return dict(
        real_images         = 'every frame of every video (ImageFolderDataset over the dataset path), no x-flip',
        generated_images    = f'{math.ceil(num_gen / FRAMES_PER_VIDEO)} videos x {FRAMES_PER_VIDEO} frames (t = 0..{FRAMES_PER_VIDEO - 1}), '
                              'z ~ N(0, I), no truncation; uint8',
        num_gen             = num_gen,
        detector            = location,
        detector_sha256     = fileio.file_sha256(location),
    )

#----------------------------------------------------------------------------
