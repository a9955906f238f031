"""Tests of svc_plugin/motion_meter.py: the per-tick motion ratio and key-frame jerk of a video generator."""

import random

import numpy as np
import pytest
import torch

from svc_plugin import dataset_tool
from svc_plugin import motion_meter
from svc_plugin.dataset import VideoFramesFolderDataset
from svc_plugin.metrics import smoothness
from tests import video_metric_fixtures as fx

#----------------------------------------------------------------------------

@pytest.fixture(scope='module')
def data(tmp_path_factory):
    """(dataset, its kwargs): four 16-frame demo videos at 16x16."""
    path = str(tmp_path_factory.mktemp('data') / 'demo.zip')
    dataset_tool.write_demo_dataset(path, num_videos=4, num_frames=16, resolution=16)
    kwargs = dict(class_name='svc_plugin.dataset.VideoFramesFolderDataset', path=path, frames=3)
    return VideoFramesFolderDataset(path, frames=3), kwargs

def meter(data, **kwargs):
    dataset, dataset_kwargs = data
    return motion_meter.MotionMeter(dataset, dataset_kwargs, z_dim=16, device=torch.device('cpu'), **kwargs)

#----------------------------------------------------------------------------

def test_motion_ratio_is_the_generated_over_the_real_mean_absolute_frame_change(data):
    dataset, _kwargs = data
    G = fx.tiny_video_generator()
    ratio = meter(data, videos=2, frames=5, real_videos=3, seed=7).measure(G)['Motion/ratio']
    z = torch.from_numpy(np.stack([np.random.RandomState(i).randn(16) for i in range(2)])).float() # The first two preview videos.
    fakes = G(z=z, c=torch.zeros([2, 0]), t=torch.arange(5.0).repeat(2, 1), motion_seeds=[0, 1], noise_mode='const').reshape(2, 5, 3, 16, 16)
    order = np.argsort(dataset.video_names)[:3] # First videos by name, each at an offset drawn from RandomState(seed).
    offsets = np.random.RandomState(7).randint(0, dataset.video_lengths[order] - 5 + 1)
    reals = np.stack([dataset.load_video_frames(v, range(o, o + 5)) for v, o in zip(order, offsets)]).astype(np.float64) / 127.5 - 1
    expected = float((fakes[:, 1:] - fakes[:, :-1]).abs().mean()) / np.abs(np.diff(reals, axis=1)).mean()
    assert ratio == pytest.approx(expected, rel=1e-5)

def test_still_videos_have_a_motion_ratio_of_zero(data):
    G = fx.tiny_video_generator(motion_mask=0) # A fresh video generator renders its image generator's frame at every t.
    assert meter(data).measure(G)['Motion/ratio'] == 0

def test_jerk_is_high_for_linear_motion_and_low_for_b_spline_motion_on_the_same_weights(data):
    G = fx.tiny_video_generator(kind='bspline')
    jerk = {kind: meter(data).measure(smoothness.with_motion_kind(G, kind))['Motion/jerk'] for kind in ('bspline', 'linear')}
    assert jerk['bspline'] < 0.2 and jerk['linear'] > 1, jerk

def test_measuring_twice_gives_the_same_numbers_and_leaves_the_global_random_states_as_they_were(data):
    G, motion = fx.tiny_video_generator(), meter(data)
    torch.manual_seed(1), np.random.seed(1), random.seed(1)
    first = motion.measure(G)
    assert (torch.rand(1), np.random.rand(), random.random()) == (torch.rand(1, generator=torch.Generator().manual_seed(1)),
        np.random.RandomState(1).rand(), random.Random(1).random())
    assert motion.measure(G) == first

def test_a_dataset_without_a_long_enough_video_is_a_clear_error(data):
    with pytest.raises(ValueError, match='at least 17 frames'):
        meter(data, frames=17)

#----------------------------------------------------------------------------
