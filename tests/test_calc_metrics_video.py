"""Tests of calc_metrics_video.py: a tiny snapshot and dataset end to end, and one-line errors for bad input."""

import json
import os
import pickle
import re
import subprocess
import sys

import pytest
import torch
from click.testing import CliRunner

import calc_metrics_video
from svc_plugin import fileio
from svc_plugin.metrics import frame_fid
from svc_plugin.metrics import smoothness
from training import networks_stylegan3
from tests import detectors
from tests import video_metric_fixtures as fx

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATASET = 'svc_plugin.dataset.VideoFramesFolderDataset'

#----------------------------------------------------------------------------

def write_snapshot(path, G, training_set_kwargs=None, **extra):
    """A network pickle in the upstream snapshot format."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'wb') as f:
        pickle.dump(dict(dict(G=G, D=torch.nn.Linear(1, 1), G_ema=G, augment_pipe=None, training_set_kwargs=training_set_kwargs), **extra), f)
    return str(path)

@pytest.fixture
def run(tmp_path):
    """A run folder with a tiny video snapshot whose training set is a tiny video dataset, and a TorchScript I3D stand-in."""
    data = fx.write_video_folder(tmp_path / 'data', fx.random_videos(6, 10))
    pkl = write_snapshot(tmp_path / 'run' / 'network-snapshot-000000.pkl', fx.tiny_video_generator(),
        training_set_kwargs=dict(class_name=DATASET, path=data, frames=3, max_dist=4, random_seed=0, use_labels=False, xflip=True))
    return dict(data=data, pkl=pkl, i3d=fx.save_video_detector(tmp_path / 'i3d.pt'), tmp=tmp_path)

def invoke(*args, tmp_path=None):
    env = dict(DNNLIB_CACHE_DIR=str(tmp_path / 'cache')) if tmp_path is not None else {}
    return CliRunner().invoke(calc_metrics_video.main, list(args), env=env)

def assert_one_line_error(result, pattern):
    assert result.exit_code != 0 and isinstance(result.exception, SystemExit)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and 'Traceback' not in result.output, result.output
    assert re.search(pattern, lines[0]), lines[0]

#----------------------------------------------------------------------------

def test_end_to_end_prints_results_and_appends_json_lines(run):
    """As typed, in two processes (torch.distributed over gloo on the CPU) unless a single GPU is all there is."""
    gpus = 2 if torch.cuda.device_count() != 1 else 1
    cmd = [sys.executable, 'calc_metrics_video.py', '--metrics=fvd4_8f', f'--network={run["pkl"]}', f'--i3d={run["i3d"]}',
        '--seed=3', f'--gpus={gpus}', '--quiet']
    env = dict(os.environ, DNNLIB_CACHE_DIR=str(run['tmp'] / 'cache'))
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    value = float(re.fullmatch(r'fvd4_8f (\S+)', proc.stdout.splitlines()[-1]).group(1))
    assert value > 0

    with open(os.path.join(os.path.dirname(run['pkl']), 'metric-fvd4_8f.jsonl')) as f:
        lines = [json.loads(line) for line in f]
    assert len(lines) == 1
    line = lines[0]
    assert line['metric'] == 'fvd4_8f' and line['results']['fvd4_8f'] == pytest.approx(value, rel=1e-5)
    assert line['results']['num_real_videos'] == 4 and line['num_gpus'] == gpus
    assert line['snapshot_pkl'] == 'network-snapshot-000000.pkl' and line['data'] == run['data']
    assert line['seed'] == 3 and line['motion'] == 'bspline'
    protocol = line['protocol']
    assert protocol['detector_sha256'] == fileio.file_sha256(run['i3d']) and protocol['detector'] == run['i3d']
    assert (protocol['videos'], protocol['frames'], protocol['subsample'], protocol['real_clip_seed']) == (4, 8, 1, 0)
    assert 'sorted order' in protocol['real_clips'] and 't = 0' in protocol['generated_clips']

def test_motion_option_re_evaluates_the_same_weights_with_the_other_blending(run, monkeypatch):
    monkeypatch.setattr(smoothness, 'JERK_VIDEOS', 8)
    jerk = {}
    for kind in ['linear', 'bspline']:
        result = invoke('--metrics=jerk_kf', f'--network={run["pkl"]}', f'--motion={kind}', '--quiet')
        assert result.exit_code == 0, result.output
        jerk[kind] = float(result.output.split()[-1])
    assert jerk['linear'] > 1 > 0.2 > jerk['bspline'], jerk
    with open(os.path.join(os.path.dirname(run['pkl']), 'metric-jerk_kf.jsonl')) as f:
        lines = [json.loads(line) for line in f]
    assert [line['motion'] for line in lines] == ['linear', 'bspline'] and lines[0]['protocol']['motion_kind'] == 'linear'

def test_fid50k_full_is_computed_and_recorded_with_its_detector(run, monkeypatch):
    inception = detectors.save_detector(run['tmp'] / 'inception.pkl', seed=1)
    decoy = detectors.save_detector(run['tmp'] / 'decoy.pkl', seed=2)
    monkeypatch.setenv('STYLESV_INCEPTION', decoy) # Restored after the test; --inception must override it.
    compute = frame_fid.compute_frame_fid
    monkeypatch.setattr(frame_fid, 'compute_frame_fid', lambda opts, num_gen: compute(opts, num_gen=32)) # 2 videos, not 3,125.
    result = invoke('--metrics=fid50k_full', f'--network={run["pkl"]}', f'--inception={inception}', '--quiet', tmp_path=run['tmp'])
    assert result.exit_code == 0, result.output
    value = float(re.fullmatch(r'fid50k_full (\S+)\n', result.output).group(1))
    assert value > 0
    with open(os.path.join(os.path.dirname(run['pkl']), 'metric-fid50k_full.jsonl')) as f:
        (line,) = [json.loads(line) for line in f]
    assert line['results']['fid50k_full'] == pytest.approx(value, rel=1e-5)
    assert line['protocol']['detector'] == inception and line['protocol']['detector_sha256'] == fileio.file_sha256(inception)
    other = invoke('--metrics=fid50k_full', f'--network={run["pkl"]}', f'--inception={decoy}', '--quiet', tmp_path=run['tmp'])
    assert other.exit_code == 0 and float(other.output.split()[-1]) != pytest.approx(value, rel=1e-3) # The detector is the flag's.

def test_same_seed_gives_the_same_number_and_the_cache_is_reused(run):
    args = ['--metrics=fvd4_8f', f'--network={run["pkl"]}', f'--i3d={run["i3d"]}', '--quiet']
    first = invoke(*args, tmp_path=run['tmp'])
    second = invoke(*args, tmp_path=run['tmp'])
    assert first.exit_code == 0 and second.exit_code == 0, first.output
    assert first.output == second.output and re.fullmatch(r'fvd4_8f \S+\n', first.output)
    assert len(os.listdir(run['tmp'] / 'cache' / 'gan-metrics')) == 1

def test_without_network_the_newest_snapshot_in_runs_is_measured(run, monkeypatch):
    monkeypatch.setattr(smoothness, 'JERK_VIDEOS', 8)
    snapshot = run['tmp'] / 'runs' / '00003-demo' / 'network-snapshot-000002.pkl'
    os.makedirs(snapshot.parent)
    os.replace(run['pkl'], snapshot)
    monkeypatch.chdir(run['tmp'])
    result = invoke('--metrics=jerk_kf', '--quiet') # As a user types it after training.
    assert result.exit_code == 0, result.output
    assert os.path.isfile(snapshot.parent / 'metric-jerk_kf.jsonl')

#----------------------------------------------------------------------------
# Bad input: one line on stderr, non-zero exit, no traceback.

def test_without_network_and_without_runs(run, monkeypatch):
    monkeypatch.chdir(run['tmp'])
    assert_one_line_error(invoke('--metrics=jerk_kf'), r'--network=latest: no network-snapshot-\*\.pkl in the runs under runs/')

def test_missing_network(run):
    assert_one_line_error(invoke('--network', str(run['tmp'] / 'nope.pkl')), 'not found')

def test_network_that_is_not_a_pickle(run):
    path = run['tmp'] / 'notes.txt'
    path.write_text('not a network\n')
    assert_one_line_error(invoke('--network', str(path)), 'cannot load')

def test_pickle_without_a_generator(run):
    path = run['tmp'] / 'nogen.pkl'
    with open(path, 'wb') as f:
        pickle.dump(dict(D=torch.nn.Linear(1, 1)), f)
    assert_one_line_error(invoke('--network', str(path)), 'holds no generator')

def test_image_only_pickle_for_a_video_metric(run):
    G = networks_stylegan3.Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3, channel_base=256, channel_max=8, num_layers=2, num_critical=1)
    pkl = write_snapshot(run['tmp'] / 'image.pkl', G)
    assert_one_line_error(invoke('--metrics=fvd16', '--network', pkl, '--data', run['data']), 'image-only.*fvd16')

def test_unknown_metric(run):
    assert_one_line_error(invoke('--metrics=fvd16,fvd_sixteen', '--network', run['pkl']), 'unknown metric fvd_sixteen')

def test_missing_data(run):
    assert_one_line_error(invoke('--network', run['pkl'], '--data', str(run['tmp'] / 'missing.zip')), 'missing.zip')

def test_snapshot_without_a_training_set_needs_data(run):
    pkl = write_snapshot(run['tmp'] / 'noset.pkl', fx.tiny_video_generator())
    assert_one_line_error(invoke('--network', pkl), '--data is required')

def test_missing_detector_file(run):
    assert_one_line_error(invoke('--network', run['pkl'], '--i3d', str(run['tmp'] / 'missing.pt')), '--i3d')

def test_detector_that_is_not_torchscript(run):
    path = run['tmp'] / 'bad.pt'
    path.write_bytes(b'garbage')
    assert_one_line_error(invoke('--metrics=fvd4_8f', '--network', run['pkl'], '--i3d', str(path), '--quiet', tmp_path=run['tmp']), 'TorchScript')

#----------------------------------------------------------------------------
