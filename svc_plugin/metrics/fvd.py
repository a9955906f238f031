"""Frechet Video Distance (Unterthiner et al. 2018) under the protocol of StyleGAN-V (Skorokhodov et al. 2022).

StyleSV reports FVD with StyleGAN-V's metric code, so these numbers compare with its tables only if every
protocol detail matches (StyleGAN-V's metric code, universome/stylegan-v, arXiv 2112.14683):
- names `fvd{videos}_{frames}f[_subsample{k}f]`: `videos` real and generated clips covering `frames`
  frames of time, of which every k-th is kept (frames/k frames per clip); fvd16 = fvd2048_16f,
  fvd128 = fvd2048_128f;
- real clips: one per video at a random start offset drawn from RandomState(REAL_CLIP_SEED), videos
  shorter than `frames` skipped, the first `videos` eligible videos in sorted order; fewer eligible
  videos than asked: all of them, reported as `num_real_videos` (never repeated to fill up);
- generated clips: z ~ N(0, I), no truncation, frames at t = 0, k, 2k, ... quantised to uint8 like images
  (x * 127.5 + 128, clamped);
- features: I3D (Kinetics-400) logits, resized to 224x224 and rescaled to [-1, 1] by the detector;
- distance: Frechet distance of the two Gaussians in float64.
Real statistics are cached under a hash of the dataset content, the protocol and the detector.
"""

import copy
import hashlib
import inspect
import json
import os
import re
import zipfile

import numpy as np
import torch

import dnnlib
from metrics import metric_main
from metrics import metric_utils
from svc_plugin import checkpoint
from svc_plugin import fileio
from svc_plugin import video_io
from svc_plugin.metrics import frechet
from svc_plugin.metrics import i3d

#----------------------------------------------------------------------------

I3D_ENV             = 'STYLESV_I3D'     # Environment variable: path or URL of a TorchScript I3D to use instead of the port.
REAL_CLIP_SEED      = 0                 # Seed of the real clips' start offsets; a protocol constant so that numbers compare.
DETECTOR_KWARGS     = dict(rescale=True, resize=True, return_features=True) # [0, 255] -> [-1, 1], 224x224, 400 logits.
DETECTOR_FRAMES     = 128               # Frames per detector batch (StyleGAN-V: 8 clips of 16 or 1 clip of 128).
GENERATOR_FRAMES    = 32                # Frames per generator call.
ALIASES             = dict(fvd16='fvd2048_16f', fvd128='fvd2048_128f')

_NAME_RE = re.compile(r'fvd(\d+)_(\d+)f(?:_subsample(\d+)f)?')

#----------------------------------------------------------------------------
# Metric names and the registry.

def parse_metric_name(name):
    """EasyDict(videos, frames, subsample) of an FVD metric name or alias; None if `name` is not one."""
    match = _NAME_RE.fullmatch(ALIASES.get(name, name))
    if match is None:
        return None
    videos, frames, subsample = int(match.group(1)), int(match.group(2)), int(match.group(3) or 1)
    if videos < 2 or frames < 1 or subsample < 1 or frames % subsample != 0:
        return None
    return dnnlib.EasyDict(videos=videos, frames=frames, subsample=subsample)

def register_fvd_metric(name):
    """Register an FVD name of the general form with metrics.metric_main on demand; False if it is not one."""
    if parse_metric_name(name) is None:
        return False
    if not metric_main.is_valid_metric(name):
        def metric(opts):
            return compute_fvd_metric(opts, name)
        metric.__name__ = name
        metric_main.register_metric(metric)
    return True

def compute_fvd_metric(opts, name):
    protocol = parse_metric_name(name)
    fvd, num_real_videos = compute_fvd(opts, **protocol)
    return {name: fvd, 'num_real_videos': num_real_videos}

for _name in ('fvd2048_16f', 'fvd16', 'fvd2048_128f', 'fvd128', 'fvd2048_128f_subsample8f'): # The published names, always listed.
    register_fvd_metric(_name)

#----------------------------------------------------------------------------

def compute_fvd(opts, videos, frames, subsample):
    """(FVD, number of real videos used); the FVD is NaN on ranks other than 0."""
    if not checkpoint.is_video_generator(opts.G):
        raise ValueError('FVD needs a video generator; this one has no motion encoder')
    detector, detector_hash = detector_of_run(opts)
    mu_real, sigma_real, num_real = real_clip_stats(opts, detector, detector_hash, videos, frames, subsample)
    mu_gen, sigma_gen = generated_clip_stats(opts, detector, videos, frames, subsample)
    if opts.rank != 0:
        return float('nan'), num_real
    return frechet.frechet_distance(mu_gen, sigma_gen, mu_real, sigma_real), num_real

def describe_protocol(name):
    """Every setting that determines the value of an FVD metric, for the record written beside the result."""
    p = parse_metric_name(name)
    location, detector_hash = detector_record()
    return dict(
        videos          = p.videos,
        frames          = p.frames,
        subsample       = p.subsample,
        clip_frames     = p.frames // p.subsample,
        real_clips      = f'one per video: the first {p.videos} videos with >= {p.frames} frames in sorted order, '
                          f'frames offset + (0, {p.subsample}, ..., {p.frames - p.subsample}), offset uniform where the clip fits',
        real_clip_seed  = REAL_CLIP_SEED,
        generated_clips = f'{p.videos} videos, t = 0, {p.subsample}, ..., {p.frames - p.subsample}; z ~ N(0, I), '
                          'no truncation; uint8 (x * 127.5 + 128, clamped)',
        detector        = location,
        detector_sha256 = detector_hash,
        detector_kwargs = DETECTOR_KWARGS,
    )

#----------------------------------------------------------------------------
# The detector.

_detector_hashes = dict() # location => sha256

def detector_of_run(opts):
    """(detector, its sha256): the TorchScript file named by $STYLESV_I3D, else the project's I3D port.

    Rank 0 goes first so that only it downloads; i3d.load_detector() keeps one per location and device.
    """
    location = os.environ.get(I3D_ENV) or None
    if opts.rank != 0 and opts.num_gpus > 1:
        torch.distributed.barrier()
    detector = i3d.load_detector(location, device=opts.device)
    if location not in _detector_hashes:
        _detector_hashes[location] = detector_sha256(detector, location)
    if opts.rank == 0 and opts.num_gpus > 1:
        torch.distributed.barrier()
    return detector, _detector_hashes[location]

def detector_record():
    """(location, sha256) of the detector that FVD uses, for the result record; the hash once it was loaded."""
    location = os.environ.get(I3D_ENV) or None
    return (location or 'i3d port (svc_plugin.metrics.i3d)'), _detector_hashes.get(location)

def detector_sha256(detector, location):
    """Hash of what makes the features: the file's bytes, or for the port its module source and weights."""
    if location is not None:
        return fileio.file_sha256(location)
    h = hashlib.sha256()
    with open(inspect.getsourcefile(type(detector)), 'rb') as f:
        h.update(f.read())
    for name, tensor in list(detector.named_parameters()) + list(detector.named_buffers()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().flatten().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()

def to_detector_input(clips):
    """uint8 [N, F, C, H, W] -> float [N, 3, F, H, W] in [0, 255]; grayscale repeated to RGB."""
    x = clips.permute(0, 2, 1, 3, 4).to(torch.float32) # [N, C, F, H, W]
    return x.repeat([1, 3, 1, 1, 1]) if x.shape[1] == 1 else x

#----------------------------------------------------------------------------
# Real clips.

def select_real_clips(video_names, video_lengths, videos, frames, subsample, seed=REAL_CLIP_SEED):
    """(video indices [n], frame indices [n, frames // subsample]): one clip per video, StyleGAN-V's protocol.

    Videos are taken in sorted order of their names, those shorter than `frames` are skipped, the first
    `videos` eligible ones are used (n may be smaller), and each gets a start offset uniform over the
    positions where the clip fits, drawn in that order from RandomState(seed).
    """
    lengths = np.asarray(video_lengths, dtype=np.int64)
    order = sorted(range(len(video_names)), key=lambda idx: video_names[idx])
    chosen = np.array([idx for idx in order if lengths[idx] >= frames][:videos], dtype=np.int64)
    if len(chosen) == 0:
        return chosen, np.zeros([0, frames // subsample], dtype=np.int64)
    offsets = np.random.RandomState(seed).randint(0, lengths[chosen] - frames + 1) # [n]
    frame_indices = offsets[:, np.newaxis] + np.arange(0, frames, subsample)[np.newaxis, :] # [n, frames // subsample]
    return chosen, frame_indices

class RealClips(torch.utils.data.Dataset):
    """The selected clips of a video dataset as uint8 [frames, C, H, W] items, for a DataLoader."""
    def __init__(self, dataset, video_indices, frame_indices):
        self.dataset = dataset
        self.video_indices = video_indices
        self.frame_indices = frame_indices
    def __len__(self):
        return len(self.video_indices)
    def __getitem__(self, idx):
        return np.asarray(self.dataset.load_video_frames(int(self.video_indices[idx]), self.frame_indices[idx].tolist()))

def real_clip_stats(opts, detector, detector_hash, videos, frames, subsample):
    """(mean, covariance, number of videos) of the real clips' features, computed once and cached on disk."""
    dataset = dnnlib.util.construct_class_by_name(**opts.dataset_kwargs)
    if not hasattr(dataset, 'load_video_frames'):
        raise ValueError(f'FVD needs a video dataset; {type(dataset).__name__} has no videos')
    video_indices, frame_indices = select_real_clips(dataset.video_names, dataset.video_lengths, videos, frames, subsample)
    num_real = len(video_indices)
    if num_real == 0:
        raise ValueError(f'FVD: no video of dataset {dataset.name!r} has the {frames} frames a clip needs')
    if num_real < videos and opts.rank == 0:
        print(f'FVD: only {num_real} of the {videos} requested real videos have >= {frames} frames; using those {num_real}')

    key = cache_key(opts.dataset_kwargs, dataset, detector_hash, videos, frames, subsample)
    cache_file = dnnlib.make_cache_dir_path('gan-metrics', f'{dataset.name}-i3d-fvd{videos}_{frames}f_sub{subsample}-{hashlib.sha256(key.encode()).hexdigest()[:32]}.npz')
    cached = load_cached_stats(cache_file, key) if (opts.cache and opts.rank == 0) else None
    if broadcast_flag(cached is not None, opts): # Rank 0 decides for everyone, so that all ranks take the same branch.
        return cached if opts.rank == 0 else (None, None, num_real) # Only rank 0 computes the distance.

    stats = metric_utils.FeatureStats(capture_mean_cov=True, max_items=num_real)
    progress = opts.progress.sub(tag='fvd real clips', num_items=num_real, rel_lo=0, rel_hi=0.5)
    item_subset = [(i * opts.num_gpus + opts.rank) % num_real for i in range((num_real - 1) // opts.num_gpus + 1)]
    loader = torch.utils.data.DataLoader(RealClips(dataset, video_indices, frame_indices), sampler=item_subset,
        batch_size=max(DETECTOR_FRAMES * subsample // frames, 1), num_workers=min(3, os.cpu_count() or 1), pin_memory=(opts.device.type == 'cuda'),
        generator=torch.Generator()) # Its own worker seeds: generated samples do not depend on whether real statistics were cached.
    for clips in loader: # [N, F, C, H, W]
        features = detector(to_detector_input(clips.to(opts.device)), **DETECTOR_KWARGS)
        stats.append_torch(features, num_gpus=opts.num_gpus, rank=opts.rank)
        progress.update(stats.num_items)
    mean, cov = stats.get_mean_cov()
    if opts.cache and opts.rank == 0:
        save_cached_stats(cache_file, key, mean, cov, num_real)
    return mean, cov, num_real

#----------------------------------------------------------------------------
# Cache of the real statistics.

def dataset_fingerprint(path):
    """Cheap content hash of a dataset: names, sizes and CRCs from a zip's central directory; names, sizes and mtimes in a folder."""
    h = hashlib.sha256()
    if os.path.isdir(path):
        files = sorted(os.path.relpath(os.path.join(root, fname), path) for root, _dirs, fnames in os.walk(path) for fname in fnames)
        for fname in files:
            st = os.stat(os.path.join(path, fname))
            h.update(f'{fname}\0{st.st_size}\0{st.st_mtime_ns}\n'.encode())
    else:
        with zipfile.ZipFile(path) as z:
            for info in z.infolist():
                h.update(f'{info.filename}\0{info.file_size}\0{info.CRC}\n'.encode())
    return h.hexdigest()

# Dataset options that do not change which pixels load_video_frames() returns.
_KWARGS_NOT_IN_KEY = ('path', 'frames', 'max_dist', 'use_labels', 'random_seed')

def cache_key(dataset_kwargs, dataset, detector_hash, videos, frames, subsample):
    """JSON of everything the real statistics depend on: data content, loading options, protocol and detector."""
    return json.dumps(dict(
        dataset         = dataset_fingerprint(dataset_kwargs['path']),
        dataset_kwargs  = {k: v for k, v in dataset_kwargs.items() if k not in _KWARGS_NOT_IN_KEY},
        resolution      = dataset.resolution,
        videos          = videos,
        frames          = frames,
        subsample       = subsample,
        seed            = REAL_CLIP_SEED,
        detector        = detector_hash,
        detector_kwargs = DETECTOR_KWARGS,
    ), sort_keys=True, default=str)

def load_cached_stats(cache_file, key):
    """(mean, cov, num_videos) from the cache, or None when absent, unreadable or written under another key."""
    try:
        with np.load(cache_file, allow_pickle=False) as data:
            if str(data['key']) != key:
                return None
            return data['mean'], data['cov'], int(data['num_videos'])
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None

def save_cached_stats(cache_file, key, mean, cov, num_videos):
    """Write to a temporary name beside the target, then rename: readers never see a partial file."""
    os.makedirs(os.path.dirname(cache_file), exist_ok=True)
    def write(tmp_path):
        with open(tmp_path, 'wb') as f:
            np.savez(f, key=np.array(key), mean=mean, cov=cov, num_videos=np.array(num_videos))
    fileio.replace_atomically(cache_file, write)

def broadcast_flag(flag, opts):
    """Rank 0's boolean, on every rank."""
    if opts.num_gpus == 1:
        return flag
    value = torch.as_tensor(float(flag), dtype=torch.float32, device=opts.device)
    torch.distributed.broadcast(value, src=0)
    return bool(value.item() != 0)

#----------------------------------------------------------------------------
# Generated clips.

def generate_video(G, z, c, t, frames_per_call=GENERATOR_FRAMES, **G_kwargs):
    """Frames [batch, frames, C, H, W] of G's videos for z [batch, z_dim] at times t [frames], float in about [-1, 1].

    Long clips are generated a chunk of frames at a time; each video's motion noise comes from one random
    motion seed, so the chunks join into the same motion that one call would give.
    """
    motion_seeds = torch.randint(0, 2**31 - 1, [z.shape[0]]).tolist()
    chunk = min(t.numel(), frames_per_call)
    videos_per_call = max(frames_per_call // chunk, 1)
    videos = []
    for v in range(0, z.shape[0], videos_per_call):
        part = slice(v, v + videos_per_call)
        videos.append(torch.cat(list(video_io.render_video_chunks(G, z[part], c[part], t, motion_seeds[part], chunk, **G_kwargs)), dim=1))
    return torch.cat(videos)

def generated_clip_stats(opts, detector, videos, frames, subsample):
    """(mean, covariance) of the features of `videos` generated clips, spread over the ranks."""
    G = copy.deepcopy(opts.G).eval().requires_grad_(False).to(opts.device)
    t = torch.arange(0, frames, subsample, dtype=torch.float32) # [frames // subsample]
    batch = max(DETECTOR_FRAMES // t.numel(), 1)
    c_iter = metric_utils.iterate_random_labels(opts=opts, batch_size=batch)
    stats = metric_utils.FeatureStats(capture_mean_cov=True, max_items=videos)
    progress = opts.progress.sub(tag='fvd generated clips', num_items=videos, rel_lo=0.5, rel_hi=1)
    while not stats.is_full():
        num = min(batch, -(-(videos - stats.num_items) // opts.num_gpus)) # Same on every rank: all_gather needs equal sizes.
        z = torch.randn([num, G.z_dim]).to(opts.device)
        with torch.no_grad():
            clips = video_io.to_uint8(generate_video(G, z, next(c_iter)[:num], t, **opts.G_kwargs))
            features = detector(to_detector_input(clips), **DETECTOR_KWARGS)
        stats.append_torch(features, num_gpus=opts.num_gpus, rank=opts.rank)
        progress.update(stats.num_items)
    return stats.get_mean_cov()

#----------------------------------------------------------------------------
