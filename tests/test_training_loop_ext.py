"""Tests of training_loop_ext: training state and snapshot pairing, the NaN guard, a failing DDP rank, the loop's helpers.

Run as a module (`python -m tests.test_training_loop_ext nan|inf|raise RUN_DIR DATA_ZIP`) this file is also the worker of
the NaN and failing-rank tests: a tiny image stage with a test-only loss, launched as train_video.py launches stages."""

import hashlib
import itertools
import json
import os
import pickle
import re
import subprocess
import sys
import time

import numpy as np
import PIL.Image
import pytest
import torch

import training_loop_ext
from svc_plugin import fileio
from svc_plugin import dataset_tool
from svc_plugin import distributed
from svc_plugin import previews
from svc_plugin import runs
from svc_plugin import training_state
from svc_plugin.metrics import smoothness
from svc_plugin.dataset import ResumableClipSampler, VideoFramesFolderDataset, generator_times, open_clip_stream
from training import loss as upstream_loss
from training import networks_stylegan2
from training import networks_stylegan3
from torch_utils import misc

ROOT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKER_ENV = dict(os.environ, OMP_NUM_THREADS='1') # Several processes share two cores: no thread oversubscription.

#----------------------------------------------------------------------------
# A tiny image stage, and test-only losses that fail on demand.

def tiny_image_stage(data_zip, **overrides):
    """training_loop kwargs of a 32x32 image stage with a few thousand parameters per network; 2 frames per step."""
    stage = dict(
        training_set_kwargs     = dict(class_name='svc_plugin.dataset.VideoFramesFolderDataset', path=data_zip, frames=1, resolution=32),
        data_loader_kwargs      = dict(num_workers=0),
        G_kwargs                = dict(class_name='training.networks_stylegan3.Generator', z_dim=8, w_dim=8, mapping_kwargs=dict(num_layers=1),
                                       channel_base=1024, channel_max=16, magnitude_ema_beta=0.999),
        D_kwargs                = dict(class_name='training.networks_stylegan2.Discriminator', channel_base=1024, channel_max=16,
                                       epilogue_kwargs=dict(mbstd_group_size=2)),
        G_opt_kwargs            = dict(class_name='torch.optim.Adam', lr=0.0025, betas=[0, 0.99], eps=1e-8),
        D_opt_kwargs            = dict(class_name='torch.optim.Adam', lr=0.002, betas=[0, 0.99], eps=1e-8),
        loss_kwargs             = dict(class_name='training.loss.StyleGAN2Loss', r1_gamma=0.01),
        batch_size=2, batch_gpu=2, total_kimg=0.02, kimg_per_tick=0.004, image_snapshot_ticks=1, network_snapshot_ticks=1, preview_grid=(1, 1),
    )
    stage.update(overrides)
    return stage

class NaNLoss(upstream_loss.StyleGAN2Loss):
    """StyleGAN2Loss whose generator gets NaN latents from frame `nan_from_nimg` on: a run that diverges on cue."""
    def __init__(self, nan_from_nimg, **kwargs):
        super().__init__(**kwargs)
        self.nan_from_nimg = nan_from_nimg

    def accumulate_gradients(self, phase, real_img, real_c, gen_z, gen_c, gain, cur_nimg):
        if cur_nimg >= self.nan_from_nimg:
            gen_z = gen_z * float('nan')
        super().accumulate_gradients(phase, real_img, real_c, gen_z, gen_c, gain, cur_nimg)

class InfWeightLoss(upstream_loss.StyleGAN2Loss):
    """StyleGAN2Loss that writes Inf into a G weight after the D phase of frame `inf_at_nimg`: every loss of that tick
    has been computed with finite weights, so only the weights can tell."""
    def __init__(self, inf_at_nimg, **kwargs):
        super().__init__(**kwargs)
        self.inf_at_nimg = inf_at_nimg

    def accumulate_gradients(self, phase, real_img, real_c, gen_z, gen_c, gain, cur_nimg):
        super().accumulate_gradients(phase, real_img, real_c, gen_z, gen_c, gain, cur_nimg)
        if phase in ('Dmain', 'Dboth') and cur_nimg == self.inf_at_nimg:
            with torch.no_grad():
                self.G.mapping.fc0.weight[0, 0] = float('inf')

class RaisingLoss(upstream_loss.StyleGAN2Loss):
    """StyleGAN2Loss that raises on rank `fail_rank` from frame `fail_from_nimg` on, after writing the time to `marker`."""
    def __init__(self, fail_rank, fail_from_nimg, marker, **kwargs):
        super().__init__(**kwargs)
        self.fail_rank, self.fail_from_nimg, self.marker = fail_rank, fail_from_nimg, marker

    def accumulate_gradients(self, phase, real_img, real_c, gen_z, gen_c, gain, cur_nimg):
        if torch.distributed.get_rank() == self.fail_rank and cur_nimg >= self.fail_from_nimg:
            with open(self.marker, 'w') as f:
                f.write(str(time.time()))
            raise RuntimeError(f'injected failure on rank {self.fail_rank}')
        super().accumulate_gradients(phase, real_img, real_c, gen_z, gen_c, gain, cur_nimg)

def run_worker(kind, run_dir, data_zip):
    """Body of `python -m tests.test_training_loop_ext`: one process diverging ('nan') or with a weight made Inf ('inf'), or two of which one fails ('raise')."""
    if kind == 'nan':
        stage = tiny_image_stage(data_zip, loss_kwargs=dict(class_name='tests.test_training_loop_ext.NaNLoss', r1_gamma=0.01, nan_from_nimg=4))
        num_gpus = 1
    elif kind == 'inf':
        stage = tiny_image_stage(data_zip, loss_kwargs=dict(class_name='tests.test_training_loop_ext.InfWeightLoss', r1_gamma=0.01, inf_at_nimg=4))
        num_gpus = 1
    else:
        stage = tiny_image_stage(data_zip, batch_size=4, total_kimg=1, loss_kwargs=dict(class_name='tests.test_training_loop_ext.RaisingLoss',
            r1_gamma=0.01, fail_rank=1, fail_from_nimg=8, marker=os.path.join(run_dir, 'failed-at')))
        num_gpus = 2
    os.makedirs(run_dir, exist_ok=True)
    training_loop_ext.launch([stage], num_gpus, lambda: run_dir)

def start_worker(kind, run_dir, data_zip):
    return subprocess.run([sys.executable, '-m', 'tests.test_training_loop_ext', kind, str(run_dir), data_zip],
        cwd=ROOT_DIR, env=WORKER_ENV, capture_output=True, text=True, timeout=300)

@pytest.fixture(scope='module')
def data_zip(tmp_path_factory):
    """Four 16-frame demo videos at 32x32."""
    path = str(tmp_path_factory.mktemp('data') / 'demo.zip')
    dataset_tool.write_demo_dataset(path, num_videos=4, num_frames=16, resolution=32)
    return path

#----------------------------------------------------------------------------
# Faults.

def test_nan_in_a_loss_stops_the_run_at_its_tick_without_a_new_snapshot(tmp_path, data_zip):
    result = start_worker('nan', tmp_path, data_zip)
    assert result.returncode != 0
    # Steps of 2 frames: tick 0 ends at frame 2 (snapshot), the NaN enters at frame 4, tick 1 ends at frame 6.
    assert 'is NaN/Inf at tick 1 (kimg 0.006): stopped without writing a snapshot' in result.stderr
    state = runs.load_training_state(str(tmp_path / 'network-snapshot-000000.pkl'))
    assert state is not None and state['cur_nimg'] == 2 # The only snapshot is tick 0's, and its state matches it.
    lines = (tmp_path / 'stats.jsonl').read_text().splitlines()
    assert len(lines) == 2 and not np.isfinite(json.loads(lines[-1])['Loss/G/loss']['mean']) # The stats say why.

def test_inf_in_a_weight_with_finite_losses_stops_the_run_at_its_tick_without_a_new_snapshot(tmp_path, data_zip):
    result = start_worker('inf', tmp_path, data_zip)
    assert result.returncode != 0
    assert 'G.mapping.fc0.weight is NaN/Inf at tick 1 (kimg 0.006): stopped without writing a snapshot' in result.stderr
    assert sorted(name for name in os.listdir(tmp_path) if name.startswith('network-snapshot-')) == ['network-snapshot-000000.pkl']
    # Every snapshot under 1 kimg has that name: only its content tells tick 0's (frame 2, finite) from a later one.
    state = runs.load_training_state(str(tmp_path / 'network-snapshot-000000.pkl'))
    assert state is not None and state['cur_nimg'] == 2
    with open(tmp_path / 'network-snapshot-000000.pkl', 'rb') as f:
        snapshot = pickle.load(f)
    assert all(torch.isfinite(param).all() for key in ('G', 'G_ema') for param in snapshot[key].parameters())
    stats = json.loads((tmp_path / 'stats.jsonl').read_text().splitlines()[-1])
    losses = [value['mean'] for name, value in stats.items() if name.startswith('Loss/')]
    assert losses and np.isfinite(losses).all() # Only the weights tell.

def test_a_failing_rank_ends_every_process_promptly_with_an_error(tmp_path, data_zip):
    result = start_worker('raise', tmp_path, data_zip)
    exit_time = time.time()
    assert result.returncode != 0
    assert 'injected failure on rank 1' in result.stderr
    assert exit_time - float((tmp_path / 'failed-at').read_text()) < 60 # Rank 0 did not wait for the rest of its 1 kimg.
    assert not any(name.startswith('network-snapshot-') and name != 'network-snapshot-000000.pkl' for name in os.listdir(tmp_path))

def test_a_finished_worker_exits_with_its_output_flushed_and_no_teardown():
    code = ('import atexit, svc_plugin.distributed as distributed; atexit.register(print, "teardown"); print("done", end=""); '
        'distributed.exit_finished_worker(); print("not reached")') # A pipe buffers "done" until a flush.
    result = subprocess.run([sys.executable, '-c', code], cwd=ROOT_DIR, env=WORKER_ENV, capture_output=True, text=True, timeout=120)
    assert (result.returncode, result.stdout) == (0, 'done')

#----------------------------------------------------------------------------
# Snapshots and their training state.

def write_pair(run_dir, kimg, payload, state_payload=None):
    """A snapshot pickle of `payload` and a state describing `state_payload` (default: the same bytes)."""
    os.makedirs(run_dir, exist_ok=True)
    pkl = runs.snapshot_pkl_path(str(run_dir), kimg * 1000)
    state = dict(format=runs.STATE_FORMAT, snapshot_sha256=hashlib.sha256(pickle.dumps(state_payload or payload)).hexdigest())
    runs.write_snapshot(pkl, pickle.dumps(payload), state)
    return pkl

def test_a_state_pairs_only_with_the_snapshot_bytes_it_was_written_for(tmp_path):
    good = write_pair(tmp_path, 1, 'snapshot 1')
    torn = write_pair(tmp_path, 2, 'old snapshot 2', state_payload='new snapshot 2') # Killed between the two renames.
    assert runs.load_training_state(good) is not None
    assert runs.load_training_state(torn) is None
    assert os.path.basename(runs.state_path_of(good)) == 'training-state-000001.pt'
    assert sorted(os.listdir(tmp_path)) == ['network-snapshot-000001.pkl', 'network-snapshot-000002.pkl', 'training-state-000001.pt', 'training-state-000002.pt']

KILLED_BETWEEN_RENAMES = '''
import os, pickle, signal, sys
import training_loop_ext
from tests.test_training_loop_ext import write_pair
replace = os.replace
def replace_then_die(src, dst):
    replace(src, dst)
    if os.path.basename(dst) == 'training-state-000002.pt' and os.environ.get('DIE'):
        os.kill(os.getpid(), signal.SIGKILL)
os.replace = replace_then_die
write_pair(sys.argv[1], 2, 'snapshot 2, first tick')
os.environ['DIE'] = '1'
write_pair(sys.argv[1], 2, 'snapshot 2, second tick')
'''

def test_a_kill_between_the_renames_of_a_snapshot_and_its_state_leaves_a_resumable_run(tmp_path):
    """The second snapshot of kimg 2 replaces the first; SIGKILL right after its state is renamed, before its pickle is."""
    run_dir = tmp_path / '00000-run'
    killed = subprocess.run([sys.executable, '-c', KILLED_BETWEEN_RENAMES, str(run_dir)], cwd=ROOT_DIR, env=WORKER_ENV, capture_output=True, text=True, timeout=120)
    assert killed.returncode == -9, killed.stderr[-3000:]
    assert any('.tmp' in name for name in os.listdir(run_dir)) # The new pickle, complete under its temporary name.
    latest = runs.find_latest_snapshot(str(tmp_path))
    assert latest == str(run_dir / 'network-snapshot-000002.pkl') and runs.load_training_state(latest) is not None
    with open(latest, 'rb') as f:
        assert pickle.load(f) == 'snapshot 2, second tick'
    assert sorted(os.listdir(run_dir)) == ['network-snapshot-000002.pkl', 'training-state-000002.pt']

def test_latest_is_the_newest_complete_snapshot_of_the_newest_run_that_has_one(tmp_path):
    assert runs.find_latest_snapshot(str(tmp_path / 'absent')) is None
    write_pair(tmp_path / '00000-old', 9, 'old run')
    expected = write_pair(tmp_path / '00001-run', 3, 'complete')
    write_pair(tmp_path / '00001-run', 4, 'torn', state_payload='other')
    os.makedirs(tmp_path / '00002-died-before-its-first-snapshot')
    (tmp_path / '00003-not-a-run').write_text('a file')
    assert runs.find_latest_snapshot(str(tmp_path)) == expected

@pytest.mark.parametrize('start', ['network-snapshot-000001.pkl', 'best-fid50k_full.pkl'])
def test_only_a_snapshot_in_the_previous_stage_s_last_kimg_of_the_same_run_would_replace_it(tmp_path, start):
    start = str(tmp_path / start) # The image stage of --stage=both ended at kimg 1.000 (1000 + 24 frames), its last or its best starts the video stage.
    assert runs.replaces_previous_stage_snapshot(str(tmp_path), 1792, start, stage_start_nimg=1024)
    assert not runs.replaces_previous_stage_snapshot(str(tmp_path), 2008, start, stage_start_nimg=1024)
    assert not runs.replaces_previous_stage_snapshot(str(tmp_path / 'next-run'), 1792, start, stage_start_nimg=1024) # --resume: a new run directory.
    assert not runs.replaces_previous_stage_snapshot(str(tmp_path), 1792, None, stage_start_nimg=1024)

@pytest.mark.parametrize('best_path, starts_from', [(None, 'last'), ('best', 'best')])
def test_the_video_stage_starts_from_the_image_stage_s_best_snapshot_if_it_kept_one(tmp_path, monkeypatch, capsys, best_path, starts_from):
    paths = dict(last=str(tmp_path / 'network-snapshot-000000.pkl'), best=str(tmp_path / 'best-fid50k_full.pkl'))
    best = dict(metric='fid50k_full', value=12.5 if best_path else None, path=paths.get(best_path), kimg=0.064 if best_path else None)
    calls = []
    def stage(**kwargs):
        calls.append(kwargs)
        return dict(snapshot_pkl=paths['last'], cur_nimg=128, best=best)
    monkeypatch.setattr(training_loop_ext, 'training_loop', lambda **kwargs: training_loop_ext.dnnlib.EasyDict(stage(**kwargs)))
    training_loop_ext.run_stages(0, 1, str(tmp_path), [dict(frames=1), dict(frames=3)])
    assert 'resume_pkl' not in calls[0] and calls[1]['resume_pkl'] == paths[starts_from] and calls[1]['resume_kimg'] == 0.128
    said = dict(last="The video stage starts from the image stage's last snapshot, network-snapshot-000000.pkl.",
        best="The video stage starts from the image stage's best snapshot, best-fid50k_full.pkl (kimg 0.064, fid50k_full 12.5); its last snapshot is network-snapshot-000000.pkl.")
    assert said[starts_from] in capsys.readouterr().out and said[starts_from] in open(tmp_path / 'log.txt').read()

def test_metrics_leave_every_random_stream_as_the_training_state_saved_it():
    def draws(rnd):
        return torch.rand(3).tolist(), np.random.rand(3).tolist(), rnd.rand(3).tolist(), training_state.random.random()
    expected = draws(training_state.seed_everything(7))
    rnd = training_state.seed_everything(7)
    with training_state.random_streams_kept(rnd):
        draws(rnd) # A metric's draws: z, labels, DataLoader seeds.
    assert draws(rnd) == expected

def test_rng_state_survives_a_weights_only_round_trip(tmp_path):
    rnd = training_state.seed_everything(123)
    torch.save(training_state.capture_rng(rnd), tmp_path / 'rng.pt')
    expected = (torch.rand(3), np.random.rand(3), rnd.rand(3), training_state.random.random())
    training_state.seed_everything(0)
    training_state.restore_rng(torch.load(tmp_path / 'rng.pt', weights_only=True), rnd)
    actual = (torch.rand(3), np.random.rand(3), rnd.rand(3), training_state.random.random())
    assert torch.equal(actual[0], expected[0]) and np.array_equal(actual[1], expected[1]) and np.array_equal(actual[2], expected[2])
    assert actual[3] == expected[3]

def test_cuda_rng_states_survive_a_weights_only_round_trip(tmp_path, monkeypatch):
    """Two CUDA devices stood in for by generator objects behind torch.cuda's RNG functions."""
    devices = [torch.Generator().manual_seed(1), torch.Generator().manual_seed(2)]
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'device_count', lambda: len(devices))
    monkeypatch.setattr(torch.cuda, 'get_rng_state_all', lambda: [device.get_state() for device in devices])
    monkeypatch.setattr(torch.cuda, 'set_rng_state_all', lambda states: [device.set_state(state) for device, state in zip(devices, states)])
    rnd = training_state.seed_everything(123)
    torch.save(training_state.capture_rng(rnd), tmp_path / 'rng.pt')
    expected = [torch.rand([3], generator=device) for device in devices]
    training_state.restore_rng(torch.load(tmp_path / 'rng.pt', weights_only=True), rnd)
    assert all(torch.equal(torch.rand([3], generator=device), draw) for device, draw in zip(devices, expected))

def test_failed_write_leaves_neither_a_final_nor_a_temporary_file(tmp_path):
    def write(tmp_path_):
        with open(tmp_path_, 'wb') as f:
            f.write(b'partial')
        raise OSError('No space left on device')
    with pytest.raises(OSError):
        fileio.replace_atomically(str(tmp_path / 'network-snapshot-000001.pkl'), write)
    assert os.listdir(tmp_path) == []

#----------------------------------------------------------------------------
# Helpers of the loop.

def test_generator_times_are_clip_times_shifted_by_a_fraction_of_a_frame():
    rnd = np.random.RandomState(0)
    t = generator_times(rnd, np.array([40, 2, 100]), max_dist=32, num_clips=2000, frames=3) # The 2-frame video is left out.
    assert t.shape == (2000, 3)
    shift = t[:, 0] - np.floor(t[:, 0])
    assert shift.min() >= 0 and shift.max() < 1 and shift.std() > 0.25 # Uniform fractions of a frame ...
    offsets = t - shift[:, None]
    assert np.allclose(offsets, np.rint(offsets)) # ... on top of integer clip times,
    offsets = np.rint(offsets)
    spans = offsets[:, 2] - offsets[:, 0]
    assert set(np.unique(spans)) == {2, 4, 8, 16, 32} # spans of the powers of two up to max_dist (StyleSV's `random` sampling),
    assert (offsets[:, 0] < offsets[:, 1]).all() and (offsets[:, 1] < offsets[:, 2]).all() # sorted, distinct,
    assert offsets.min() >= 0 and offsets.max() <= 99 # inside the videos.

def test_ema_half_life_is_counted_in_frames():
    beta = training_loop_ext.ema_beta(cur_nimg=10**6, step_nimg=12, ema_kimg=6, ema_rampup=None)
    assert np.isclose(beta ** (6000 / 12), 0.5)
    assert training_loop_ext.ema_beta(cur_nimg=1000, step_nimg=12, ema_kimg=6, ema_rampup=0.05) < beta # Ramp-up: shorter half-life.

def test_resumable_clip_sampler_continues_where_the_uninterrupted_sampler_was():
    dataset = list(range(10))
    full = iter(ResumableClipSampler(skip=0, dataset=dataset, rank=1, num_replicas=2, seed=3))
    expected = [next(full) for _ in range(12)][5:]
    resumed = iter(ResumableClipSampler(skip=5, dataset=dataset, rank=1, num_replicas=2, seed=3))
    assert [next(resumed) for _ in range(7)] == expected

def write_uneven_videos(root, lengths):
    """A frame-folder dataset of 16x16 videos, video<i> holding lengths[i] frames."""
    for v, length in enumerate(lengths):
        os.makedirs(root / f'video{v}')
        for f in range(length):
            PIL.Image.fromarray(np.full([16, 16, 3], f, dtype=np.uint8)).save(root / f'video{v}' / f'{f:04d}.png')
    return str(root)

@pytest.mark.parametrize('sampling, short_share', [('video', 1 / 2), ('frame', 2 / 16)])
def test_image_stage_samples_a_video_uniformly_then_a_frame_of_it(tmp_path, sampling, short_share):
    kwargs = dict(sampling=sampling) if sampling != 'video' else {} # 'video' is the default.
    dataset = VideoFramesFolderDataset(write_uneven_videos(tmp_path, [2, 14]), frames=1, **kwargs)
    keys = list(itertools.islice(iter(ResumableClipSampler(0, dataset, rank=0, num_replicas=1, seed=0)), 4000))
    videos = dataset.item_videos()[[idx for idx, _draw in keys]]
    assert np.mean(videos == 0) == pytest.approx(short_share, abs=0.03) # video0 has 2 of the 16 frames.
    assert set(idx for idx, _draw in keys) == set(range(16)) # Every frame is drawn.
    resumed = ResumableClipSampler(10, dataset, rank=0, num_replicas=1, seed=0)
    assert list(itertools.islice(iter(resumed), 20)) == keys[10:30] # Resumable at any position.

def test_a_resumed_clip_stream_reads_the_clips_and_times_of_the_uninterrupted_one_with_any_workers(data_zip):
    def clips(clips_done, num_workers, count):
        dataset = VideoFramesFolderDataset(data_zip, frames=3, max_dist=8)
        stream = open_clip_stream(dataset, dict(num_workers=num_workers), rank=1, num_gpus=2,
            clips_per_rank=2, clips_done=clips_done, random_seed=5, device=torch.device('cpu'))
        batches = [next(stream) for _ in range(count)] # [(clips [2, F, C, H, W], labels, times [2, F])]
        return torch.cat([batch[0] for batch in batches]), torch.cat([batch[2] for batch in batches])
    full_clips, full_times = clips(clips_done=0, num_workers=0, count=5)
    resumed_clips, resumed_times = clips(clips_done=4, num_workers=1, count=3)
    assert len(set(map(tuple, full_times.tolist()))) > 1 # Clips of several spans ...
    assert torch.equal(resumed_clips, full_clips[4:]) and torch.equal(resumed_times, full_times[4:]) # ... continued exactly.

def test_image_snapshot_becomes_video_networks_with_its_architecture_and_the_run_s_video_options():
    G = networks_stylegan3.Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=32, img_channels=3, channel_base=1024, channel_max=16, mapping_kwargs=dict(num_layers=1))
    D = networks_stylegan2.Discriminator(c_dim=0, img_resolution=32, img_channels=3, channel_base=1024, channel_max=16)
    G_kwargs = dict(class_name='svc_plugin.networks.VideoGenerator', channel_base=4096, channel_max=64, low_rank=2,
        motion_kwargs=dict(z_dim=8, v_dim=8, motion_z_distance=4))
    D_kwargs = dict(class_name='svc_plugin.discriminator.VideoDiscriminator', channel_base=4096, num_frames=3, tsm=True, fuse='mean')
    G_video, D_video, G_ema = training_loop_ext.networks_from_snapshot(dict(G=G, D=D, G_ema=G), G_kwargs, D_kwargs)
    assert type(G_video).__name__ == 'VideoGenerator' and type(D_video).__name__ == 'VideoDiscriminator' and G_ema is not G_video
    assert G_video.init_kwargs.channel_base == 1024 and D_video.init_kwargs.channel_base == 1024 # The snapshot's architecture ...
    assert G_video.synthesis.low_rank == 2 and G_video.motion_z_distance == 4 and D_video.num_frames == 3 # ... and the run's video options.
    z = torch.randn([2, 8])
    with torch.no_grad():
        assert torch.allclose(G_ema(z, None, t=torch.zeros([2, 1])), G(z, None), atol=1e-5) # Starts where the image stage ended.
    snapshot = dict(G=G_video, D=D_video, G_ema=G_ema)
    assert training_loop_ext.networks_from_snapshot(snapshot, G_kwargs, D_kwargs) == (G_video, D_video, G_ema) # Video: taken as is.

def test_video_g_and_g_ema_from_an_image_snapshot_share_their_new_weights_and_keep_their_own_image_weights():
    G = networks_stylegan3.Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3, channel_base=512, channel_max=8, mapping_kwargs=dict(num_layers=1))
    D = networks_stylegan2.Discriminator(c_dim=0, img_resolution=16, img_channels=3, channel_base=512, channel_max=8)
    G_ema = networks_stylegan3.Generator(**G.init_kwargs) # Image weights of its own.
    G_kwargs = dict(class_name='svc_plugin.networks.VideoGenerator', low_rank=2, motion_kwargs=dict(z_dim=8, v_dim=8, motion_z_distance=4))
    D_kwargs = dict(class_name='svc_plugin.discriminator.VideoDiscriminator', num_frames=3, tsm=True, fuse='mean', fuse_res=8)
    G_video, _, G_ema_video = training_loop_ext.networks_from_snapshot(dict(G=G, D=D, G_ema=G_ema), G_kwargs, D_kwargs)
    tensors = lambda module: dict(misc.named_params_and_buffers(module))
    image_names = set(tensors(G))
    video, video_ema = tensors(G_video), tensors(G_ema_video)
    new_names = sorted(set(video) - image_names)
    assert any('motion_encoder' in name for name in new_names) and 'synthesis.fuse.weight' in new_names and 'synthesis.input_motion.weight' in new_names
    assert all(torch.equal(video[name], video_ema[name]) for name in new_names) # One draw of the video-only weights.
    assert all(torch.equal(video[name], tensors(G)[name]) and torch.equal(video_ema[name], tensors(G_ema)[name]) for name in image_names)
    assert not torch.equal(video['synthesis.input.weight'], video_ema['synthesis.input.weight']) # Each its own source's.

def tiny_video_stage(data_zip, **overrides):
    """training_loop kwargs of a 32x32 video stage of 3-frame clips, networks as tiny_image_stage's; 6 frames per step."""
    return tiny_image_stage(data_zip, frames=3,
        training_set_kwargs=dict(class_name='svc_plugin.dataset.VideoFramesFolderDataset', path=data_zip, frames=3, resolution=32),
        G_kwargs=dict(class_name='svc_plugin.networks.VideoGenerator', z_dim=8, w_dim=8, mapping_kwargs=dict(num_layers=1),
            channel_base=1024, channel_max=16, motion_kwargs=dict(z_dim=8, v_dim=8, motion_z_distance=4)),
        D_kwargs=dict(class_name='svc_plugin.discriminator.VideoDiscriminator', channel_base=1024, channel_max=16, fuse_res=16,
            epilogue_kwargs=dict(mbstd_group_size=2)),
        loss_kwargs=dict(class_name='svc_plugin.loss.VideoLoss', r1_gamma=0.01), **overrides)

def test_ada_moves_p_per_clip_in_a_video_stage(tmp_path, data_zip):
    stage = tiny_video_stage(data_zip, total_kimg=0.012, image_snapshot_ticks=None, # 2 steps of 2 clips = 6 frames.
        augment_kwargs=dict(class_name='training.augment.AugmentPipe', xflip=1),
        ada_target=-2, ada_interval=1, ada_kimg=0.01) # Every sign exceeds the target: p rises at every step.
    os.makedirs(tmp_path / 'run')
    training_loop_ext.launch([stage], 1, lambda: str(tmp_path / 'run'))
    (snapshot_pkl,) = [name for name in os.listdir(tmp_path / 'run') if name.endswith('.pkl')]
    with open(tmp_path / 'run' / snapshot_pkl, 'rb') as f:
        p = float(pickle.load(f)['augment_pipe'].p)
    assert p == pytest.approx(2 * 2 / 10) # 2 steps x 2 clips / 10 clips per unit of p; per frame it would be 3x that.

#----------------------------------------------------------------------------
# Watching a run: the motion meter and TensorBoard events.

@pytest.fixture(scope='module')
def metered_runs(tmp_path_factory, data_zip):
    """Run directories {meter videos: run dir} of one tiny video stage with the motion meter on (2 videos) and off:
    2 steps from kimg 0.991 (ticks at 0.997 and 1.003), previews at the start and the end, a snapshot with jerk_kf at the end."""
    run_dirs = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(smoothness, 'JERK_VIDEOS', 8) # A cheap metric.
        for videos in (2, 0):
            run_dirs[videos] = str(tmp_path_factory.mktemp(f'meter{videos}'))
            stage = tiny_video_stage(data_zip, resume_kimg=0.991, total_kimg=0.012, kimg_per_tick=0.006, metrics=['jerk_kf'], preview_frames=4,
                motion_meter_videos=videos)
            training_loop_ext.launch([stage], 1, lambda run_dir=run_dirs[videos]: run_dir)
    return run_dirs

def last_snapshot(run_dir):
    with open(runs.snapshot_pkl_path(run_dir, 1003), 'rb') as f:
        return pickle.load(f)

def test_a_run_with_the_motion_meter_ends_with_the_weights_of_a_run_without_it(metered_runs):
    metered, plain = last_snapshot(metered_runs[2]), last_snapshot(metered_runs[0])
    for name in ('G', 'D', 'G_ema'):
        plain_tensors = dict(misc.named_params_and_buffers(plain[name]))
        assert all(torch.equal(tensor, plain_tensors[key]) for key, tensor in misc.named_params_and_buffers(metered[name])), name

def test_the_motion_meter_reports_every_tick_in_stats_and_on_the_console(metered_runs):
    ticks = [json.loads(line) for line in open(os.path.join(metered_runs[2], 'stats.jsonl'))]
    assert len(ticks) == 2 and all(tick['Motion/ratio']['mean'] >= 0 and tick['Motion/jerk']['mean'] > 0 for tick in ticks)
    assert ticks[0]['Motion/ratio']['mean'] < 0.01 # Near-still videos: one step after a fresh video generator, whose motion mask is zero.
    plain_ticks = [json.loads(line) for line in open(os.path.join(metered_runs[0], 'stats.jsonl'))]
    assert all(tick.get('Motion/ratio', dict(num=0))['num'] == 0 for tick in plain_ticks) # Names reported earlier in the process stay, empty.
    assert len(re.findall(r'  motion \d+\.\d{3} +jerk \d+\.\d{3}\n', open(os.path.join(metered_runs[2], 'log.txt')).read())) == 2

def read_events(run_dir):
    """{tag: [(step, value)]} of the scalars and {tag: [step]} of the images in a run's TensorBoard events."""
    from tensorboard.backend.event_processing import event_accumulator # pylint: disable=import-outside-toplevel
    events = event_accumulator.EventAccumulator(run_dir, size_guidance={event_accumulator.SCALARS: 0, event_accumulator.IMAGES: 0})
    events.Reload()
    scalars = {tag: [(event.step, event.value) for event in events.Scalars(tag)] for tag in events.Tags()['scalars']}
    images = {tag: [(event.step, event.width, event.height) for event in events.Images(tag)] for tag in events.Tags()['images']}
    return scalars, images

def test_tensorboard_events_hold_every_tick_statistic_metric_and_preview_at_whole_kimg_steps(metered_runs):
    scalars, images = read_events(metered_runs[2])
    ticks = [json.loads(line) for line in open(os.path.join(metered_runs[2], 'stats.jsonl'))]
    expected = {} # {tag: [(step, value)]}: the ticks at kimg 0.997 and 1.003 are steps 0 and 1.
    for step, tick in enumerate(ticks):
        for name, value in tick.items():
            if name != 'timestamp' and value['num'] > 0:
                expected.setdefault(name, []).append((step, pytest.approx(value['mean'])))
    metric = [json.loads(line)['results']['jerk_kf'] for line in open(os.path.join(metered_runs[2], 'metric-jerk_kf.jsonl'))]
    assert scalars.pop('Metrics/jerk_kf') == [(1, pytest.approx(metric[0]))] and len(metric) == 1 # The one snapshot, at the end.
    assert scalars == expected
    assert images == {'Previews/fakes': [(0, 4 * 32, 1 * 32), (1, 4 * 32, 1 * 32)]} # At the start (kimg 0.991) and the end: 1 video x 4 frames.

def test_first_frames_view_feeds_the_upstream_image_grid(data_zip):
    dataset = VideoFramesFolderDataset(data_zip, frames=1)
    (cols, rows), images, labels = previews.cropped_image_grid(dataset, (5, 3), random_seed=0)
    assert (cols, rows) == (5, 3) and images.shape == (15, 3, 32, 32) and images.dtype == np.uint8 and labels.shape == (15, 0)

def test_the_summaries_run_without_cudnn_autotuning_and_leave_it_as_it_was(monkeypatch):
    calls = []
    def summary(module, inputs): # Records instead of running.
        calls.append((type(module).__name__, len(inputs), torch.backends.cudnn.benchmark))
        return torch.zeros([4, 3, 16, 16])
    monkeypatch.setattr(misc, 'print_module_summary', summary)
    monkeypatch.setattr(torch.backends.cudnn, 'benchmark', True)
    G = torch.nn.Module()
    G.z_dim, G.c_dim = 8, 0
    training_loop_ext.print_summaries(G, torch.nn.Identity(), 3, torch.device('cpu'))
    assert calls == [('Module', 3, False), ('Identity', 3, False)] and torch.backends.cudnn.benchmark is True

#----------------------------------------------------------------------------

if __name__ == '__main__':
    run_worker(*sys.argv[1:])

#----------------------------------------------------------------------------
