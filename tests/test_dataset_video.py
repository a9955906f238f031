"""Tests of svc_plugin.dataset: the paper's clip sampling, clips and times, image mode, labels, mirroring, zips and workers."""

import json
import os
import pickle
import zipfile

import numpy as np
import PIL.Image
import pytest
import torch

from svc_plugin.dataset import VideoFramesFolderDataset, sample_clip_times

#----------------------------------------------------------------------------

def _frame(video, t, size=8):
    """A frame that names itself: red = video index, green = frame index, blue = a left-to-right ramp."""
    image = np.zeros([size, size, 3], dtype=np.uint8)
    image[..., 0] = video
    image[..., 1] = t
    image[..., 2] = np.arange(size) * 16
    return image

def _make_videos(root, lengths, labels=None, fps=25, size=8):
    """One folder of PNG frames per video, plus dataset.json; returns the video names."""
    names = [f'video{v:05d}' for v in range(len(lengths))]
    for v, (name, length) in enumerate(zip(names, lengths)):
        os.makedirs(os.path.join(root, name))
        for t in range(length):
            PIL.Image.fromarray(_frame(v, t, size)).save(os.path.join(root, name, f'{t:06d}.png'))
    with open(os.path.join(root, 'dataset.json'), 'w') as f:
        json.dump(dict(fps=fps, labels=labels), f)
    return names

def _zip(root, path):
    with zipfile.ZipFile(path, 'w') as zf:
        for dirpath, _dirs, files in os.walk(root):
            for fname in files:
                zf.write(os.path.join(dirpath, fname), os.path.relpath(os.path.join(dirpath, fname), root).replace(os.sep, '/'))
    return str(path)

def _frame_ids(clip):
    """(video index, frame indices) that _frame painted into a clip [F, C, H, W]."""
    return int(clip[0, 0, 0, 0]), clip[:, 1, 0, 0].astype(np.int64)

#----------------------------------------------------------------------------

@pytest.mark.parametrize('frames, video_len, max_dist', [(3, 100, 32), (3, 10, 32), (2, 6, 32), (5, 64, 16), (3, 40, 3)])
def test_clip_spans_are_powers_of_two_within_bounds_and_frames_sorted_distinct(frames, video_len, max_dist):
    rnd = np.random.default_rng(0)
    longest = min(video_len - 1, max_dist)
    allowed = {2**k for k in range(12) if frames - 1 <= 2**k <= longest}
    spans, offsets, middles = set(), set(), set()
    for _ in range(3000):
        t = sample_clip_times(rnd, video_len, frames, max_dist)
        assert t.dtype == np.int64 and t.shape == (frames,)
        assert np.all(np.diff(t) > 0) and t[0] >= 0 and t[-1] < video_len
        span = int(t[-1] - t[0])
        spans.add(span)
        offsets.add(int(t[0]))
        middles.update((t[1:-1] - t[0]).tolist())
    assert spans == allowed # every allowed span is drawn, nothing else
    assert offsets == set(range(video_len - min(allowed))) # offsets cover the whole video
    if frames > 2:
        assert middles == set(range(1, max(allowed))) # middle frames anywhere strictly inside

def test_clip_span_is_chosen_uniformly_among_the_powers_of_two():
    rnd = np.random.RandomState(1) # a RandomState works as well as a Generator
    spans = [int(np.ptp(sample_clip_times(rnd, 1000, 3, 32))) for _ in range(5000)]
    counts = np.array([spans.count(s) for s in (2, 4, 8, 16, 32)])
    assert counts.sum() == 5000 and np.all(np.abs(counts / 5000 - 0.2) < 0.03)

def test_clip_without_a_fitting_power_of_two_takes_consecutive_frames():
    rnd = np.random.default_rng(0)
    for _ in range(20):
        t = sample_clip_times(rnd, 4, 4, 32) # span 3: no power of two in [3, 3]
        np.testing.assert_array_equal(t, [0, 1, 2, 3])
        t = sample_clip_times(rnd, 9, 4, 32) # span 4 or 8
        assert np.ptp(t) in (4, 8)
    with pytest.raises(ValueError, match='video of >= 4 frames'):
        sample_clip_times(rnd, 3, 4, 32)

#----------------------------------------------------------------------------

def test_clips_return_sampled_frames_with_times_from_zero(tmp_path):
    _make_videos(tmp_path / 'vids', [40, 12, 2])
    ds = VideoFramesFolderDataset(str(tmp_path / 'vids'), resolution=8, frames=3, max_dist=16)
    assert ds.name == 'vids' and ds.resolution == 8 and ds.num_channels == 3 and ds.image_shape == [3, 8, 8]
    assert ds.video_names == ['video00000', 'video00001', 'video00002']
    np.testing.assert_array_equal(ds.video_lengths, [40, 12, 2])
    assert ds.fps == 25.0 and ds.frames == 3 and ds.max_dist == 16
    assert len(ds) == 2 # the 2-frame video cannot hold a 3-frame clip
    for i in range(200):
        clip, label, times = ds[i % 2]
        assert clip.dtype == np.uint8 and clip.shape == (3, 3, 8, 8)
        assert label.dtype == np.float32 and label.shape == (0,)
        video, t = _frame_ids(clip)
        assert video == i % 2
        assert times.dtype == np.float32 and times[0] == 0
        np.testing.assert_array_equal(times, t - t[0])
        assert np.ptp(t) in (2, 4, 8, 16) and np.all(np.diff(t) > 0)

def test_short_videos_are_skipped_and_counted_once(tmp_path, capsys):
    _make_videos(tmp_path / 'vids', [5, 2, 1, 3])
    ds = VideoFramesFolderDataset(str(tmp_path / 'vids'), frames=3)
    assert len(ds) == 2
    assert 'skipped 2 of 4 videos shorter than 3 frames' in capsys.readouterr().out
    assert sorted(_frame_ids(ds[i][0])[0] for i in range(2)) == [0, 3]
    with pytest.raises(IOError, match='has the 8 frames'):
        VideoFramesFolderDataset(str(tmp_path / 'vids'), frames=8)

def test_image_mode_has_one_item_per_frame_of_every_video(tmp_path):
    _make_videos(tmp_path / 'vids', [4, 1, 3])
    ds = VideoFramesFolderDataset(str(tmp_path / 'vids'), frames=1, xflip=True)
    assert len(ds) == 2 * 8
    seen = []
    for i in range(8):
        clip, _label, times = ds[i]
        assert clip.shape == (1, 3, 8, 8)
        np.testing.assert_array_equal(times, [0])
        seen.append((_frame_ids(clip)[0], int(_frame_ids(clip)[1][0])))
    assert seen == [(0, 0), (0, 1), (0, 2), (0, 3), (1, 0), (2, 0), (2, 1), (2, 2)]

def test_xflip_mirrors_every_frame_of_the_same_clip(tmp_path):
    _make_videos(tmp_path / 'vids', [30, 20])
    ds = VideoFramesFolderDataset(str(tmp_path / 'vids'), frames=4, xflip=True)
    assert len(ds) == 4
    for i in range(2):
        fresh = [pickle.loads(pickle.dumps(ds)) for _ in range(2)] # two copies that draw the same clip first
        plain, _, t_plain = fresh[0][i]
        flipped, _, t_flipped = fresh[1][i + 2]
        np.testing.assert_array_equal(flipped, plain[:, :, :, ::-1])
        np.testing.assert_array_equal(t_flipped, t_plain)
        assert not np.array_equal(flipped, plain)
        assert ds.get_details(i + 2).xflip and not ds.get_details(i).xflip

def test_labels_by_video_name_and_by_frame_path(tmp_path):
    _make_videos(tmp_path / 'a', [4, 4, 4], labels=[['video00000', 2], ['video00001', 0], ['video00002', 1]])
    ds = VideoFramesFolderDataset(str(tmp_path / 'a'), frames=2, use_labels=True)
    assert ds.has_labels and ds.label_dim == 3 and ds.has_onehot_labels
    for i in range(3):
        clip, label, _ = ds[i]
        np.testing.assert_array_equal(label, np.eye(3, dtype=np.float32)[[2, 0, 1][_frame_ids(clip)[0]]])
    per_frame = [[f'video{v:05d}/{t:06d}.png', [float(v), float(t)]] for v in range(2) for t in range(3)]
    _make_videos(tmp_path / 'b', [3, 3], labels=per_frame)
    images = VideoFramesFolderDataset(str(tmp_path / 'b'), frames=1, use_labels=True)
    for i in range(6):
        clip, label, _ = images[i]
        np.testing.assert_array_equal(label, [_frame_ids(clip)[0], _frame_ids(clip)[1][0]])
    clips = VideoFramesFolderDataset(str(tmp_path / 'b'), frames=2, use_labels=True) # a video takes its first frame's label
    np.testing.assert_array_equal(clips.get_label(1), [1, 0])
    _make_videos(tmp_path / 'c', [3, 3], labels=[['video00000', 1]])
    with pytest.raises(IOError, match='no label for 1 item'):
        VideoFramesFolderDataset(str(tmp_path / 'c'), frames=2, use_labels=True).get_label(0)

def test_load_video_frames_reads_requested_indices(tmp_path):
    _make_videos(tmp_path / 'vids', [6, 9])
    ds = VideoFramesFolderDataset(_zip(tmp_path / 'vids', tmp_path / 'vids.zip'), frames=3)
    frames = ds.load_video_frames(1, [8, 0, 3])
    assert frames.shape == (3, 3, 8, 8) and frames.dtype == np.uint8
    np.testing.assert_array_equal(frames[:, 1, 0, 0], [8, 0, 3])
    np.testing.assert_array_equal(frames[:, 0, 0, 0], [1, 1, 1])
    np.testing.assert_array_equal(frames[0].transpose(1, 2, 0), _frame(1, 8))

def test_clips_repeat_for_the_same_seeds_and_differ_otherwise(tmp_path):
    _make_videos(tmp_path / 'vids', [64])
    def draws(random_seed, torch_seed):
        ds = VideoFramesFolderDataset(str(tmp_path / 'vids'), frames=3, random_seed=random_seed)
        torch.manual_seed(torch_seed)
        return [tuple(ds[0][2]) for _ in range(10)]
    assert draws(0, 0) == draws(0, 0)
    assert draws(0, 0) != draws(1, 0)
    assert draws(0, 0) != draws(0, 1)

#----------------------------------------------------------------------------

def test_zip_dataset_pickles_without_its_handle_and_works_in_loader_workers(tmp_path):
    _make_videos(tmp_path / 'vids', [64])
    ds = VideoFramesFolderDataset(_zip(tmp_path / 'vids', tmp_path / 'vids.zip'), frames=3, max_dist=32)
    ds[0] # opens the zip in this process
    state = ds.__getstate__()
    assert state['_zipfile'] is None and state['_rng'] is None
    copy = pickle.loads(pickle.dumps(ds))
    assert copy[0][0].shape == (3, 3, 8, 8)

    def run_loader():
        torch.manual_seed(3)
        loader = torch.utils.data.DataLoader(ds, sampler=[0] * 8, batch_size=1, num_workers=2)
        return [tuple(times[0].tolist()) for _clip, _label, times in loader]
    first = run_loader()
    assert first == run_loader() # reproducible from the seeds
    assert first[0::2] != first[1::2] # the two workers draw different clips
    assert len(set(first)) > 4

def test_bad_paths_and_layouts_raise_one_clear_error(tmp_path):
    with pytest.raises(IOError, match='directory or a .zip'):
        VideoFramesFolderDataset(str(tmp_path / 'missing'))
    _make_videos(tmp_path / 'vids', [4])
    with pytest.raises(IOError, match='resolution 16'):
        VideoFramesFolderDataset(str(tmp_path / 'vids'), resolution=16)
    with pytest.raises(ValueError, match='max_dist'):
        VideoFramesFolderDataset(str(tmp_path / 'vids'), frames=4, max_dist=2)
    PIL.Image.fromarray(_frame(0, 0)).save(tmp_path / 'vids' / 'stray.png')
    with pytest.raises(IOError, match='one folder per video'):
        VideoFramesFolderDataset(str(tmp_path / 'vids'))
    (tmp_path / 'empty').mkdir()
    with pytest.raises(IOError, match='No frame folders'):
        VideoFramesFolderDataset(str(tmp_path / 'empty'))
    (tmp_path / 'bad.zip').write_bytes(b'not a zip')
    with pytest.raises(IOError, match='not a valid zip'):
        VideoFramesFolderDataset(str(tmp_path / 'bad.zip'))
