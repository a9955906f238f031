"""Tests of FVD (svc_plugin/metrics/fvd.py, frechet.py) and FID over frames (frame_fid.py)."""

import os
import zipfile

import numpy as np
import pytest
import scipy.linalg
import torch

import dnnlib
from metrics import metric_main
from metrics import metric_utils
from svc_plugin import fileio
from svc_plugin import video_io
from svc_plugin.metrics import frame_fid
from svc_plugin.metrics import frechet
from svc_plugin.metrics import fvd
from svc_plugin.metrics import video_metrics
from tests import detectors
from tests import video_metric_fixtures as fx

DATASET = 'svc_plugin.dataset.VideoFramesFolderDataset'

#----------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Private cache directory and a TorchScript stand-in for the I3D."""
    monkeypatch.setenv('DNNLIB_CACHE_DIR', str(tmp_path / 'cache'))
    monkeypatch.setattr(dnnlib, 'make_cache_dir_path', lambda *paths: os.path.join(str(tmp_path / 'cache'), *paths))
    monkeypatch.setenv(fvd.I3D_ENV, fx.save_video_detector(tmp_path / 'i3d.pt'))
    return tmp_path

def fvd_of(G, data, name, **kwargs):
    assert video_metrics.is_valid_metric(name)
    result = metric_main.calc_metric(name, G=G, dataset_kwargs=dict(class_name=DATASET, path=data), device='cpu', **kwargs)
    return result.results

#----------------------------------------------------------------------------
# Frechet distance.

def test_frechet_distance_equals_direct_scipy_computation():
    rnd = np.random.RandomState(0)
    a, b = rnd.randn(50, 6), rnd.randn(40, 6) @ rnd.randn(6, 6) + 0.5
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    direct = np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * scipy.linalg.sqrtm(s1 @ s2).real)
    assert frechet.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(direct, rel=1e-12)
    assert frechet.frechet_distance(mu1, s1, mu1, s1) == pytest.approx(0, abs=1e-9)

def test_frechet_distance_computes_in_float64():
    rnd = np.random.RandomState(1)
    x = rnd.randn(30, 4)
    mu, sigma = x.mean(0), np.cov(x, rowvar=False)
    assert frechet.frechet_distance(mu.astype(np.float32), sigma.astype(np.float32), mu, sigma) == pytest.approx(0, abs=1e-6)

#----------------------------------------------------------------------------
# Metric names.

def test_published_names_and_aliases_are_registered():
    for name in ['fvd2048_16f', 'fvd16', 'fvd2048_128f', 'fvd128', 'fvd2048_128f_subsample8f', 'fid50k_full', 'jerk_kf', 'jitter_kf']:
        assert metric_main.is_valid_metric(name)
    assert fvd.parse_metric_name('fvd16') == dict(videos=2048, frames=16, subsample=1)
    assert fvd.parse_metric_name('fvd2048_128f_subsample8f') == dict(videos=2048, frames=128, subsample=8)

def test_general_names_register_on_demand_and_bad_ones_do_not():
    assert not metric_main.is_valid_metric('fvd24_12f_subsample4f')
    assert video_metrics.is_valid_metric('fvd24_12f_subsample4f')
    assert metric_main.is_valid_metric('fvd24_12f_subsample4f')
    for bad in ['fvd16x', 'fvd1_16f', 'fvd64_10f_subsample3f', 'fvd64_0f', 'fvd_16f', 'fid50k']:
        assert not fvd.register_fvd_metric(bad)
    assert not video_metrics.is_valid_metric('fvd64_10f_subsample3f')

#----------------------------------------------------------------------------
# Real-clip sampling.

def test_real_clips_one_per_video_in_sorted_order_short_videos_skipped():
    names = ['c', 'a', 'e', 'b', 'd', 'f']
    lengths = [40, 20, 16, 15, 100, 33]
    videos, frames = fvd.select_real_clips(names, lengths, videos=3, frames=16, subsample=1, seed=0)
    assert [names[i] for i in videos] == ['a', 'c', 'd'] # b (15 frames) is too short; e, f are beyond the first 3.
    assert frames.shape == (3, 16)
    for video, clip in zip(videos, frames):
        assert np.all(np.diff(clip) == 1) and clip[0] >= 0 and clip[-1] < lengths[video]

def test_real_clip_offsets_are_the_protocol_s_draws_from_seed_0():
    """Offsets of the default protocol, written out: in sorted name order, RandomState(0).randint(0, length - frames + 1)
    per eligible video (numpy's legacy generator, fixed across versions), so FVD compares across runs and codebases."""
    names = ['v5', 'v4', 'v3', 'v2', 'v1', 'v0', 'v6']
    lengths = [200, 200, 16, 100, 50, 20, 15] # In sorted order v0..v5: 20, 50, 100, 16, 200, 200 frames; v6 too short.
    videos, frames = fvd.select_real_clips(names, lengths, videos=6, frames=16, subsample=1)
    assert [names[i] for i in videos] == ['v0', 'v1', 'v2', 'v3', 'v4', 'v5']
    assert frames[:, 0].tolist() == [4, 0, 67, 0, 103, 9] # Draws below 5, 35, 85, 1, 185, 185.
    assert np.array_equal(frames, frames[:, :1] + np.arange(16))
    _, other_seed = fvd.select_real_clips(names, lengths, videos=6, frames=16, subsample=1, seed=1)
    assert other_seed[:, 0].tolist() == [3, 12, 72, 0, 137, 133]

def test_no_video_long_enough_gives_empty_integer_selections():
    videos, frames = fvd.select_real_clips(['a', 'b'], [10, 15], videos=2, frames=16, subsample=4)
    assert (videos.shape, videos.dtype, frames.shape, frames.dtype) == ((0,), np.int64, (0, 4), np.int64)

@pytest.mark.parametrize('name, protocol', [
    ('fvd16', (2048, 16, 1)), ('fvd2_1f', (2, 1, 1)), ('fvd3_12f_subsample4f', (3, 12, 4)),
    ('fvd1_16f', None), ('fvd16_0f', None), ('fvd16_12f_subsample0f', None), ('fvd16_12f_subsample5f', None), ('fid50k', None),
])
def test_metric_names_parse_into_videos_frames_and_subsample(name, protocol):
    parsed = fvd.parse_metric_name(name)
    assert (parsed if parsed is None else (parsed.videos, parsed.frames, parsed.subsample)) == protocol

def test_real_clips_subsample_covers_the_named_span():
    videos, frames = fvd.select_real_clips(['a', 'b'], [127, 128], videos=2, frames=128, subsample=8, seed=0)
    assert list(videos) == [1] # 127 frames cannot hold a 128-frame clip.
    assert np.array_equal(frames[0], np.arange(0, 128, 8)) # The only offset that fits.

def test_fewer_videos_than_requested_are_used_and_reported(tmp_path, capsys):
    data = fx.write_video_folder(tmp_path / 'data', fx.random_videos(5, 8))
    results = fvd_of(fx.ReplayVideoGenerator(fx.random_videos(5, 8)), data, 'fvd12_8f')
    assert results.num_real_videos == 5
    assert 'only 5 of the 12 requested real videos' in capsys.readouterr().out

#----------------------------------------------------------------------------
# FVD values.

def test_fvd_of_a_set_against_itself_is_zero_and_grows_with_perturbation(tmp_path):
    videos = fx.random_videos(24, 8, seed=3)
    data = fx.write_video_folder(tmp_path / 'data', videos) # Clips span whole videos: offsets are all 0.
    values = [fvd_of(fx.ReplayVideoGenerator(videos, perturbation=p), data, 'fvd24_8f')['fvd24_8f'] for p in [0, 0.05, 0.1, 0.2, 0.4]]
    assert abs(values[0]) < 1e-6
    assert all(a < b for a, b in zip(values, values[1:])), values

def test_subsampled_clips_take_every_kth_frame(tmp_path):
    videos = fx.random_videos(16, 12, seed=4)
    data = fx.write_video_folder(tmp_path / 'data', videos)
    same = fvd_of(fx.ReplayVideoGenerator(videos), data, 'fvd16_12f_subsample4f')['fvd16_12f_subsample4f']
    shifted = fx.ReplayVideoGenerator(np.roll(videos, 1, axis=1)) # Frames 1, 5, 9 instead of 0, 4, 8.
    assert abs(same) < 1e-6 < fvd_of(shifted, data, 'fvd16_12f_subsample4f')['fvd16_12f_subsample4f']

def test_fvd_rejects_an_image_generator(tmp_path):
    data = fx.write_video_folder(tmp_path / 'data', fx.random_videos(4, 8))
    G = torch.nn.Linear(1, 1)
    with pytest.raises(ValueError, match='video generator'):
        fvd_of(G, data, 'fvd4_8f')

#----------------------------------------------------------------------------
# Cache of the real statistics.

def cache_files(tmp_path):
    return sorted(os.listdir(tmp_path / 'cache' / 'gan-metrics'))

def test_real_statistics_are_cached_and_recomputed_when_the_dataset_changes(tmp_path):
    videos = fx.random_videos(8, 8, seed=5)
    data = fx.write_video_folder(tmp_path / 'data', videos)
    first = fvd_of(fx.ReplayVideoGenerator(videos), data, 'fvd8_8f')['fvd8_8f']
    assert len(cache_files(tmp_path)) == 1
    assert fvd_of(fx.ReplayVideoGenerator(videos), data, 'fvd8_8f')['fvd8_8f'] == first # From the cache.
    assert len(cache_files(tmp_path)) == 1

    changed = videos.copy()
    changed[0] = 255 - changed[0]
    fx.write_video_folder(data, changed) # Same file names, new content.
    assert abs(fvd_of(fx.ReplayVideoGenerator(changed), data, 'fvd8_8f')['fvd8_8f']) < 1e-6 # Not the stale statistics.
    assert len(cache_files(tmp_path)) == 2

def test_dataset_fingerprint_sees_content_of_folders_and_zips(tmp_path):
    data = fx.write_video_folder(tmp_path / 'data', fx.random_videos(2, 3, seed=6))
    before = fvd.dataset_fingerprint(data)
    assert fvd.dataset_fingerprint(data) == before
    fx.write_video_folder(data, fx.random_videos(2, 3, seed=7))
    assert fvd.dataset_fingerprint(data) != before

    def write_zip(path, payload):
        with zipfile.ZipFile(path, 'w') as z:
            z.writestr('v0/000000.png', payload)
        return str(path)
    a, b = write_zip(tmp_path / 'a.zip', b'abcd'), write_zip(tmp_path / 'b.zip', b'abce') # Same names and sizes.
    assert fvd.dataset_fingerprint(a) != fvd.dataset_fingerprint(b)

def test_cache_key_changes_with_dataset_protocol_and_detector(tmp_path):
    data = fx.write_video_folder(tmp_path / 'data', fx.random_videos(2, 3))
    kwargs = dnnlib.EasyDict(class_name=DATASET, path=data)
    dataset = dnnlib.util.construct_class_by_name(**kwargs)
    key = lambda **changes: fvd.cache_key(kwargs, dataset, **dict(dict(detector_hash='a', videos=2, frames=16, subsample=1), **changes))
    base = key()
    assert base == key()
    for changes in [dict(videos=3), dict(frames=32), dict(subsample=2), dict(detector_hash='b')]:
        assert key(**changes) != base
    assert fvd.cache_key(dnnlib.EasyDict(kwargs, resolution=16), dataset, 'a', 2, 16, 1) != base
    fx.write_video_folder(data, fx.random_videos(2, 3, seed=1))
    assert key() != base

def test_detector_hash_is_the_file_hash(tmp_path):
    path = fx.save_video_detector(tmp_path / 'other.pt', seed=1)
    detector = torch.jit.load(path)
    assert fvd.detector_sha256(detector, path) == fileio.file_sha256(path)
    assert fileio.file_sha256(path) != fileio.file_sha256(os.environ[fvd.I3D_ENV])

#----------------------------------------------------------------------------
# FID over frames.

def test_frame_stream_returns_consecutive_frames_of_successive_videos():
    videos = fx.random_videos(3, 16, seed=8)
    stream = frame_fid.FrameStream(fx.ReplayVideoGenerator(videos))
    frames = torch.cat([stream(torch.zeros([4, 4]), torch.zeros([4, 0])) for _ in range(12)]) # 48 = 3 videos x 16.
    expected = torch.as_tensor(videos.reshape(48, *videos.shape[2:]))
    assert torch.equal(video_io.to_uint8(frames), expected)

def test_frame_fid_of_the_videos_own_frames_is_zero(tmp_path, monkeypatch):
    monkeypatch.setenv('STYLESV_INCEPTION', detectors.save_detector(tmp_path / 'inception.pkl', seed=1))
    videos = fx.random_videos(4, 16, seed=9)
    data = fx.write_video_folder(tmp_path / 'data', videos)
    opts = metric_utils.MetricOptions(G=fx.ReplayVideoGenerator(videos), dataset_kwargs=dict(class_name=DATASET, path=data), device='cpu')
    assert abs(frame_fid.compute_frame_fid(opts, num_gen=64)) < 1e-6
    assert opts.dataset_kwargs.class_name == 'training.dataset.ImageFolderDataset' # Every frame, as images.

#----------------------------------------------------------------------------
