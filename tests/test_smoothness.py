"""Tests of the key-frame smoothness metrics (svc_plugin/metrics/smoothness.py) on a small random VideoGenerator."""

import math

import pytest
import torch

from metrics import metric_main
from metrics import metric_utils
from svc_plugin.metrics import smoothness
from svc_plugin.metrics import video_metrics # pylint: disable=unused-import # Registers jerk_kf and jitter_kf.
from tests import video_metric_fixtures as fx

#----------------------------------------------------------------------------

@pytest.fixture(scope='module')
def generators():
    """The same random weights with B-spline and with linear blending of the key codes (d = 16)."""
    G = fx.tiny_video_generator(kind='bspline')
    return dict(bspline=G, linear=smoothness.with_motion_kind(G, 'linear'))

def options(G):
    torch.manual_seed(0)
    return metric_utils.MetricOptions(G=G, device='cpu')

#----------------------------------------------------------------------------

def test_with_motion_kind_keeps_every_weight(generators):
    G, G_linear = generators['bspline'], generators['linear']
    assert smoothness.motion_kind(G) == 'bspline' and smoothness.motion_kind(G_linear) == 'linear'
    linear_state = G_linear.state_dict()
    assert all(torch.equal(value, linear_state[name]) for name, value in G.state_dict().items())
    assert smoothness.motion_kind(smoothness.with_motion_kind(G_linear, 'bspline')) == 'bspline'

def test_jerk_separates_linear_from_bspline_on_the_same_weights(generators):
    jerk = {kind: smoothness.compute_key_frame_jerk(options(G), num_videos=16, periods=4) for kind, G in generators.items()}
    assert jerk['bspline'] < 0.2, jerk # C1 at key frames: O(h).
    assert jerk['linear'] > 1, jerk # A kink larger than a frame's typical change of velocity.

def test_jitter_separates_linear_from_bspline_on_the_same_weights(generators):
    periods = 16
    jitter = {kind: smoothness.compute_key_frame_jitter(options(G), num_videos=2, periods=periods) for kind, G in generators.items()}
    assert jitter['bspline'] < 1.5 / periods, jitter # Chance level (no d-periodicity): 1/periods.
    assert jitter['linear'] > 2 / periods and jitter['linear'] > 3 * jitter['bspline'], jitter

def test_jitter_is_undefined_without_motion_in_the_pixels():
    G = fx.tiny_video_generator(motion_mask=0) # A fresh video generator renders its image generator's frame at every t.
    assert math.isnan(smoothness.compute_key_frame_jitter(options(G), num_videos=1, periods=2))

def test_jerk_kf_through_the_registry(generators, monkeypatch):
    monkeypatch.setattr(smoothness, 'JERK_VIDEOS', 8)
    result = metric_main.calc_metric('jerk_kf', G=generators['linear'], device='cpu')
    assert result.results.jerk_kf > 1
    protocol = video_metrics.describe_protocol('jerk_kf', generators['linear'])
    assert protocol['motion_kind'] == 'linear' and protocol['key_frame_distance'] == 16

def test_smoothness_metrics_reject_an_image_generator():
    with pytest.raises(ValueError, match='video generator'):
        metric_main.calc_metric('jitter_kf', G=torch.nn.Linear(1, 1), device='cpu')

#----------------------------------------------------------------------------
