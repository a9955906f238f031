"""The video metrics in the upstream registry: importing this module registers them with metrics.metric_main.

fvd2048_16f (fvd16), fvd2048_128f (fvd128), fvd2048_128f_subsample8f and, on demand, any
fvd{videos}_{frames}f[_subsample{k}f]  (fvd.py); fid50k_full over frames (frame_fid.py, replaces the
upstream entry); jerk_kf and jitter_kf (smoothness.py). Callers check names with is_valid_metric(),
which registers an on-demand FVD name in the calling process (spawned processes must call it too),
and record describe_protocol() beside each result.
"""

from metrics import metric_main
from svc_plugin.metrics import fvd
from svc_plugin.metrics import frame_fid
from svc_plugin.metrics import smoothness

#----------------------------------------------------------------------------

SMOOTHNESS_METRICS = ('jerk_kf', 'jitter_kf')

def is_valid_metric(name):
    """True for every registered metric and every FVD name of the general form (registered on the way)."""
    return fvd.register_fvd_metric(name) or metric_main.is_valid_metric(name)

def needs_video_generator(name):
    return fvd.parse_metric_name(name) is not None or name in SMOOTHNESS_METRICS

def describe_protocol(name, G):
    """Settings that determine the metric's value (detector hash, sample counts, sampling), as a JSON-able dict."""
    if fvd.parse_metric_name(name) is not None:
        return fvd.describe_protocol(name)
    if name == 'fid50k_full':
        return frame_fid.describe_protocol()
    if name in SMOOTHNESS_METRICS:
        return smoothness.describe_protocol(name, G)
    return {}

#----------------------------------------------------------------------------
