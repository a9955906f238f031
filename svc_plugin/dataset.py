"""Video training data: clips of frames with the paper's random spans (Zhang et al., Towards Smooth Video Composition, ICLR 2023, arXiv 2212.07413).

A video dataset is a zip or folder holding one sub-folder of frame images per video (frames sorted by
name) and an optional dataset.json with `labels` and `fps`. VideoFramesFolderDataset is an upstream
`training.dataset.Dataset` whose items are clips of one video rather than single images.
"""

import io
import itertools
import json
import os
import zipfile

import numpy as np
import PIL.Image
import torch

from torch_utils import misc
from training.dataset import Dataset

#----------------------------------------------------------------------------

def sample_clip_times(rnd, video_len, frames, max_dist):
    """Sorted, distinct frame indices of one clip (`sampling/random.yaml` of the reference code, genforce/StyleSV, as StyleGAN-V's).

    The span (last index minus first) is drawn uniformly from the powers of two in
    [frames - 1, min(video_len - 1, max_dist)]; when no power of two fits there (e.g. frames=4 in a
    4-frame video), the span is frames - 1, i.e. consecutive frames. The first frame sits at a uniform
    offset, the last at offset + span, the middle frames uniformly without repeats in between.
    `rnd` is a np.random.Generator or RandomState. Needs 2 <= frames <= min(video_len, max_dist + 1).
    """
    longest = int(min(video_len - 1, max_dist))
    if not 2 <= frames <= longest + 1:
        raise ValueError(f'a clip of {frames} frames needs frames >= 2, a video of >= {frames} frames and max_dist >= {frames - 1}; '
                         f'got video_len={video_len}, max_dist={max_dist}')
    spans = [1 << k for k in range(longest.bit_length()) if frames - 1 <= (1 << k) <= longest]
    span = int(rnd.choice(spans)) if spans else frames - 1
    offset = int(rnd.choice(video_len - span))
    middle = rnd.choice(span - 1, size=frames - 2, replace=False) + 1 if frames > 2 else np.zeros([0], dtype=np.int64)
    return offset + np.sort(np.concatenate([[0, span], middle]).astype(np.int64))

#----------------------------------------------------------------------------

class VideoFramesFolderDataset(Dataset):
    """Clips of `frames` frames from videos stored as folders of frames, in a directory or a zip.

    Item idx -> (frames uint8 [F, C, H, W], label float32 [label_dim], times float32 [F]). The times are
    the sampled frame indices minus the clip's first index, so t[0] = 0 and t[-1] = the span: the
    generator is sampled at times of the same kind, which only matter up to a shift.
    frames=1 is image mode: one item per frame of every video, times = [0]. `sampling` says how the training
    loop draws them: 'video' (StyleGAN-V's dataset) a video uniformly, then one of its frames, so long videos
    do not outweigh short ones; 'frame' every frame alike.
    In clip mode one item is one video (a fresh clip at every visit); videos shorter than `frames`
    are left out of the items (still listed in video_names / video_lengths) and counted in a log line.

    Randomness: a key (idx, draw), with draw a tuple of ints (the training loop's sampler numbers its
    clips so), draws that clip's times from a generator seeded with (random_seed, *draw) alone: the clip
    is the same in any process, which lets a resumed run continue the clip stream exactly. A plain
    idx draws from a stream seeded with (random_seed, torch.initial_seed()): the torch seed is what
    DataLoader sets per worker and per epoch (base seed + worker id), so clips differ across workers
    and epochs yet repeat for the same seeds. That generator is re-created whenever the torch seed
    changes and is never pickled.
    """

    def __init__(self,
        path,                   # Zip or directory: one sub-folder of frame images per video, optional dataset.json.
        resolution  = None,     # Ensure this frame size (height and width), None = any.
        frames      = 3,        # Frames per clip; 1 = image mode over every frame of every video.
        max_dist    = 32,       # Largest clip span (last frame index minus first), in frames.
        random_seed = 0,        # Seed of the clip sampling (and of the upstream max_size subset).
        sampling    = 'video',  # Image mode, in training: 'video' = uniform video then frame, 'frame' = uniform frame.
        **super_kwargs,         # Upstream Dataset arguments: max_size, use_labels, xflip.
    ):
        if frames < 1 or (frames > 1 and max_dist < frames - 1):
            raise ValueError(f'need frames >= 1 and max_dist >= frames - 1, got frames={frames}, max_dist={max_dist}')
        if sampling not in ('video', 'frame'):
            raise ValueError(f"sampling must be 'video' or 'frame', got {sampling!r}")
        self._sampling = sampling
        self._path = path
        self._zipfile = None
        self._zip_pid = None
        self._frames = frames
        self._max_dist = max_dist
        self._random_seed = random_seed
        self._rng = None
        self._rng_key = None

        all_fnames = self._list_files()
        self._frame_fnames = self._group_frames(all_fnames)                 # {video name: sorted frame paths}
        self._video_names = sorted(self._frame_fnames)
        self._video_lengths = np.array([len(self._frame_fnames[v]) for v in self._video_names], dtype=np.int64)
        self._info = self._load_info() if 'dataset.json' in all_fnames else {}

        # Items: [num_items, 2] rows of (video index, frame index); the frame index is -1 in clip mode.
        if frames == 1:
            videos = np.repeat(np.arange(len(self._video_names)), self._video_lengths)
            starts = np.cumsum(self._video_lengths) - self._video_lengths
            self._items = np.stack([videos, np.arange(len(videos)) - starts[videos]], axis=1)
        else:
            eligible = np.flatnonzero(self._video_lengths >= frames)
            self._items = np.stack([eligible, np.full_like(eligible, -1)], axis=1)
            num_short = len(self._video_names) - len(eligible)
            if num_short > 0:
                print(f'{path}: skipped {num_short} of {len(self._video_names)} videos shorter than {frames} frames')
            if len(eligible) == 0:
                raise IOError(f'No video in {path} has the {frames} frames a clip needs')

        name = os.path.splitext(os.path.basename(os.path.normpath(path)))[0]
        self._check_frame_formats()
        frame_shape = list(self.load_video_frames(0, [0]).shape[1:])
        if resolution is not None and frame_shape[1:] != [resolution, resolution]:
            raise IOError(f'Dataset frames are {frame_shape[2]}x{frame_shape[1]} but resolution {resolution} was requested: {path}')
        super().__init__(name=name, raw_shape=[len(self._items)] + frame_shape, random_seed=random_seed, **super_kwargs)

    # Files ------------------------------------------------------------------

    def _list_files(self):
        if os.path.isdir(self._path):
            self._type = 'dir'
            return {os.path.relpath(os.path.join(root, fname), self._path).replace(os.sep, '/')
                    for root, _dirs, files in os.walk(self._path) for fname in files}
        if os.path.isfile(self._path) and self._path.lower().endswith('.zip'):
            self._type = 'zip'
            try:
                return set(self._get_zipfile().namelist())
            except zipfile.BadZipFile:
                raise IOError(f'Dataset path is not a valid zip file: {self._path}') from None
        raise IOError(f'Dataset path must be a directory or a .zip file: {self._path}')

    def _group_frames(self, all_fnames):
        """Frame images grouped by their folder (= video name), each group sorted by name."""
        PIL.Image.init()
        videos = {}
        for fname in all_fnames:
            if os.path.splitext(fname)[1].lower() in PIL.Image.EXTENSION:
                videos.setdefault(os.path.dirname(fname), []).append(fname)
        if '' in videos:
            raise IOError(f'{self._path}: frames must be inside one folder per video, found {sorted(videos[""])[0]} at the top level')
        if len(videos) == 0:
            raise IOError(f'No frame folders found in dataset path: {self._path}')
        return {video: sorted(fnames) for video, fnames in videos.items()}

    def _get_zipfile(self):
        """The zip, opened once per process: a handle inherited through fork would share its file offset."""
        if self._zipfile is None or self._zip_pid != os.getpid():
            self._zipfile = zipfile.ZipFile(self._path)
            self._zip_pid = os.getpid()
        return self._zipfile

    def _open_file(self, fname):
        if self._type == 'dir':
            return open(os.path.join(self._path, fname), 'rb')
        return self._get_zipfile().open(fname)

    def _read_file(self, fname):
        try:
            with self._open_file(fname) as f:
                return f.read()
        except zipfile.BadZipFile as err: # A damaged member (bad CRC, truncated data): say which, as an IOError.
            raise IOError(f'{self._path}: {fname} is damaged ({err}); rebuild the zip') from None

    def _load_info(self):
        try:
            info = json.loads(self._read_file('dataset.json'))
        except ValueError:
            raise IOError(f'{self._path}: dataset.json is not valid JSON') from None
        if not isinstance(info, dict):
            raise IOError(f'{self._path}: dataset.json must hold an object with "labels" and "fps"')
        return info

    def _check_frame_formats(self):
        """Fail now, in one line, rather than in the middle of a run: the first frame of every video must be an RGB or
        grayscale image of the first video's size (read from the image headers, without decoding)."""
        first = None
        for video in self._video_names:
            fname = self._frame_fnames[video][0]
            try:
                with self._open_file(fname) as f, PIL.Image.open(f) as image:
                    mode, size = image.mode, image.size
            except (OSError, zipfile.BadZipFile) as err: # PIL.UnidentifiedImageError is an OSError.
                raise IOError(f'{self._path}: cannot read frame {fname} ({type(err).__name__}); rebuild the dataset') from None
            if mode not in ('RGB', 'L'):
                raise IOError(f'{self._path}: video {video} has {mode} frames ({fname}) but training needs RGB or grayscale; '
                    f'convert the dataset with python -m svc_plugin.dataset_tool --source={self._path} --dest=<new .zip> --resolution=<N>')
            if first is None:
                first = (video, mode, size)
            elif (mode, size) != first[1:]:
                describe = lambda mode, size: f'{size[0]}x{size[1]} {dict(L="grayscale").get(mode, mode)} frames'
                raise IOError(f'{self._path}: videos differ in frame format: {first[0]} has {describe(*first[1:])}, {video} has '
                    f'{describe(mode, size)}; convert the dataset with python -m svc_plugin.dataset_tool --source={self._path} --dest=<new .zip> --resolution=<N>')

    def close(self):
        try:
            if self._zipfile is not None and self._zip_pid == os.getpid():
                self._zipfile.close()
        finally:
            self._zipfile = None

    def __getstate__(self):
        return dict(super().__getstate__(), _zipfile=None, _rng=None, _rng_key=None)

    # Frames -----------------------------------------------------------------

    def load_video_frames(self, video_idx, frame_indices):
        """Frames of video `video_idx` (an index into video_names) as uint8 [len(frame_indices), C, H, W]."""
        fnames = self._frame_fnames[self._video_names[video_idx]]
        frames = [self._load_frame(fnames[i]) for i in frame_indices]
        if any(frame.shape != frames[0].shape for frame in frames):
            raise IOError(f'{self._path}: frames of video {self._video_names[video_idx]} differ in shape')
        return np.stack(frames)

    def _load_frame(self, fname):
        image = np.asarray(PIL.Image.open(io.BytesIO(self._read_file(fname))))
        if image.ndim == 2:
            image = image[:, :, np.newaxis] # HW => HWC
        return image.transpose(2, 0, 1) # HWC => CHW

    def _clip_rng(self):
        key = torch.initial_seed()
        if self._rng is None or self._rng_key != key:
            self._rng = np.random.default_rng([self._random_seed, key])
            self._rng_key = key
        return self._rng

    def _sample_frames(self, raw_idx, draw):
        """(video index, frame indices) of the item `raw_idx`: its one frame, or a freshly sampled clip."""
        video_idx, frame_idx = (int(x) for x in self._items[raw_idx])
        if self._frames == 1:
            return video_idx, np.array([frame_idx], dtype=np.int64)
        rng = self._clip_rng() if draw is None else np.random.default_rng([self._random_seed, *draw])
        return video_idx, sample_clip_times(rng, int(self._video_lengths[video_idx]), self._frames, self._max_dist)

    def __getitem__(self, key):
        idx, draw = key if isinstance(key, tuple) else (key, None)
        video_idx, frame_indices = self._sample_frames(self._raw_idx[idx], draw)
        clip = self.load_video_frames(video_idx, frame_indices) # [F, C, H, W]
        if list(clip.shape[1:]) != self.image_shape:
            raise IOError(f'{self._name}: video {self._video_names[video_idx]} has frames of shape {list(clip.shape[1:])} but the dataset has {self.image_shape}')
        if self._xflip[idx]:
            clip = clip[:, :, :, ::-1]
        times = (frame_indices - frame_indices[0]).astype(np.float32)
        return clip.copy(), self.get_label(idx), times

    # Labels -----------------------------------------------------------------

    def _load_raw_labels(self):
        """One label per item. dataset.json `labels` maps video names (our dataset tool's form) or, as
        upstream, frame paths to labels; a frame's own entry wins over its video's."""
        labels = self._info.get('labels')
        if labels is None:
            return None
        labels = dict(labels)
        keys = [self._label_keys(int(v), int(f)) for v, f in self._items]
        missing = [k for k in keys if not any(key in labels for key in k)]
        if len(missing) > 0:
            raise IOError(f'dataset.json has no label for {len(missing)} item(s), e.g. video {missing[0][1]} (frame {missing[0][0]})')
        bad_labels = IOError('dataset.json labels must be all class indices (int) or all lists of floats of one length')
        try:
            labels = np.array([next(labels[key] for key in k if key in labels) for k in keys])
        except ValueError:
            raise bad_labels from None
        if not (labels.ndim == 2 or (labels.ndim == 1 and np.issubdtype(labels.dtype, np.integer))):
            raise bad_labels
        return labels.astype({1: np.int64, 2: np.float32}[labels.ndim])

    def _label_keys(self, video_idx, frame_idx):
        """dataset.json keys that may hold an item's label, most specific first."""
        video = self._video_names[video_idx]
        return (self._frame_fnames[video][max(frame_idx, 0)], video)

    # Properties -------------------------------------------------------------

    @property
    def video_names(self):
        return list(self._video_names)

    @property
    def video_lengths(self):
        return self._video_lengths.copy()

    @property
    def fps(self):
        fps = self._info.get('fps')
        return None if fps is None else float(fps)

    @property
    def frames(self):
        return self._frames

    @property
    def sampling(self):
        return self._sampling

    def item_videos(self):
        """Video index (into video_names) of every item, in item order: [len(self)]."""
        return self._items[self._raw_idx, 0]

    @property
    def max_dist(self):
        return self._max_dist

#----------------------------------------------------------------------------
# The training loop's clip inputs: real clips in a resumable order, generator times drawn like the real ones.

class ResumableClipSampler(torch.utils.data.Sampler):
    """misc.InfiniteSampler without its first `skip` items, as dataset keys (item, draw): draw = (seed, rank, position
    in this rank's stream) seeds that clip's frame times alone, so a resumed run reads the very clips (videos and
    times) the uninterrupted run would have read next, whatever the number of DataLoader workers.
    Single frames of a dataset with sampling='video' (StyleGAN-V's image sampling): the draw picks a video uniformly,
    then one of its items, so that every video weighs the same whatever its length. Every frame of the video is equally
    likely; the reference code (genforce/StyleSV) takes the first frame of a random two-frame clip instead (span a power of
    two up to min(length - 1, 32), offset uniform below length - span), so it never picks a video's last frame and picks
    its last 32 less often: 4.2% of the draws instead of 6.25% for its 512-frame videos, a total variation of 2.0% from
    uniform (7.5% for 128 frames)."""
    def __init__(self, skip, dataset, rank, num_replicas, seed):
        super().__init__()
        self.sampler = misc.InfiniteSampler(dataset=dataset, rank=rank, num_replicas=num_replicas, seed=seed)
        self.skip = skip
        self.draw_prefix = (seed, rank)
        self.items_of_videos = None
        if getattr(dataset, 'frames', None) == 1 and getattr(dataset, 'sampling', 'frame') == 'video':
            videos = dataset.item_videos()
            order = np.argsort(videos, kind='stable')
            self.items_of_videos = np.split(order, np.flatnonzero(np.diff(videos[order])) + 1) # [num_videos][items of it]

    def __iter__(self):
        if self.items_of_videos is not None:
            yield from self.video_balanced_keys()
            return
        items = itertools.islice(iter(self.sampler), self.skip, None)
        for position, idx in enumerate(items, start=self.skip):
            yield (idx, (*self.draw_prefix, position))

    def video_balanced_keys(self):
        for position in itertools.count(self.skip):
            draw = (*self.draw_prefix, position)
            rng = np.random.default_rng(draw)
            items = self.items_of_videos[rng.integers(len(self.items_of_videos))]
            yield (int(items[rng.integers(len(items))]), draw)

def open_clip_stream(training_set, data_loader_kwargs, rank, num_gpus, clips_per_rank, clips_done, random_seed, device):
    """Endless iterator over this rank's real clips, clips_per_rank at a time, starting after clips_done of them."""
    sampler = ResumableClipSampler(skip=clips_done, dataset=training_set, rank=rank, num_replicas=num_gpus, seed=random_seed)
    kwargs = dict(data_loader_kwargs)
    if kwargs.get('num_workers', 0) == 0:
        kwargs.pop('prefetch_factor', None)
    if device.type != 'cuda':
        kwargs.pop('pin_memory', None)
    loader = torch.utils.data.DataLoader(dataset=training_set, sampler=sampler, batch_size=clips_per_rank, **kwargs)
    training_set.close() # Workers reopen the zip themselves.
    return iter(loader)

def real_clips(clip_stream, frames, batch_gpu, device):
    """Next real clips as chunks of batch_gpu clips: images [clips * frames, C, H, W] in [-1, 1] (video-major),
    labels [clips, c_dim], times [clips, frames]."""
    clips, labels, times = next(clip_stream) # [clips, F, C, H, W], [clips, c_dim], [clips, F]
    if clips.shape[1] != frames:
        raise ValueError(f'the dataset gives clips of {clips.shape[1]} frames, the loop expects {frames}')
    images = (clips.to(device).to(torch.float32) / 127.5 - 1).flatten(0, 1) # [clips * F, C, H, W]
    return images.split(batch_gpu * frames), labels.to(device).split(batch_gpu), times.to(device).split(batch_gpu)

def generator_times(rnd, video_lengths, max_dist, num_clips, frames):
    """Frame times [num_clips, frames] for G, drawn as the dataset draws real clips (span, offset and middle
    frames of a random video long enough for a clip) and shifted by a uniform fraction of a frame,
    so G learns every time."""
    lengths = video_lengths[video_lengths >= frames]
    lengths = lengths[rnd.randint(len(lengths), size=num_clips)]
    times = np.stack([sample_clip_times(rnd, int(length), frames, max_dist) for length in lengths])
    return times + rnd.uniform(size=[num_clips, 1])

def generator_inputs(rnd, training_set, num_clips, frames, z_dim, device):
    """z [num_clips, z_dim], c (labels of random dataset items) and, for clips of several frames, times."""
    z = torch.randn([num_clips, z_dim], device=device)
    c = np.stack([training_set.get_label(i) for i in rnd.randint(len(training_set), size=num_clips)])
    c = torch.from_numpy(c).to(device)
    if frames == 1:
        return z, c, None
    t = generator_times(rnd, training_set.video_lengths, training_set.max_dist, num_clips, frames)
    return z, c, torch.from_numpy(t).to(device=device, dtype=torch.float32)

#----------------------------------------------------------------------------
