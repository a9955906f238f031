"""Tests of gen_video.py: long videos in flat memory, chunking, seamless loops, content x motion grids, CLI errors."""

import copy
import os
import pickle
import subprocess
import sys
from fractions import Fraction

import imageio.v3 as iio
import imageio_ffmpeg
import numpy as np
import pytest
import torch

import gen_video
from torch_utils import persistence
from training import networks_stylegan2, networks_stylegan3

ROOT = os.path.dirname(os.path.abspath(gen_video.__file__))

#----------------------------------------------------------------------------

@persistence.persistent_class
class StandInVideoGenerator(torch.nn.Module):
    """Temporary stand-in for svc_plugin.networks.VideoGenerator: its call, a trivial network."""
    def __init__(self, z_dim=8, c_dim=0, img_resolution=16, img_channels=3, motion_z_distance=4):
        super().__init__()
        self.z_dim, self.c_dim, self.img_resolution, self.img_channels = z_dim, c_dim, img_resolution, img_channels
        self.motion_z_distance = motion_z_distance
        self.content = torch.nn.Linear(z_dim, img_channels * img_resolution ** 2)
        self.synthesis = torch.nn.Module()
        self.synthesis.motion_encoder = torch.nn.Linear(8, img_channels * img_resolution ** 2)

    def code(self, seed, slot, period):
        slot = slot % (period // self.motion_z_distance) if period else slot
        return torch.Generator().manual_seed(seed * 100003 + slot)

    def forward(self, z, c, t=None, truncation_psi=1, motion_seeds=None, motion_period=None):
        B, F = t.shape
        d = self.motion_z_distance
        v = []
        for b in range(B):
            for time in t[b].tolist():
                k, u = divmod(time / d, 1)
                w = [(1 - u) ** 2 / 2, 0.5 + u - u * u, u * u / 2]
                v.append(sum(wi * torch.randn([8], generator=self.code(motion_seeds[b], int(k) + i, motion_period)) for i, wi in enumerate(w)))
        x = self.content(z * truncation_psi).repeat_interleave(F, dim=0) + self.synthesis.motion_encoder(torch.stack(v))
        return torch.tanh(x).reshape(B * F, self.img_channels, self.img_resolution, self.img_resolution)

#----------------------------------------------------------------------------

def make_video_generator():
    torch.manual_seed(0)
    return StandInVideoGenerator().eval().requires_grad_(False)

def save_snapshot(path, G, **extra):
    D = networks_stylegan2.Discriminator(c_dim=0, img_resolution=16, img_channels=3, channel_base=256, channel_max=8)
    with open(path, 'wb') as f:
        pickle.dump(dict(G=G, D=D, G_ema=G, augment_pipe=None, **extra), f)
    return str(path)

@pytest.fixture(scope='module')
def G():
    return make_video_generator()

@pytest.fixture(scope='module')
def video_pkl(tmp_path_factory, G):
    return save_snapshot(tmp_path_factory.mktemp('net') / 'network-snapshot-000000.pkl', G, training_set_kwargs=dict(fps=10))

@pytest.fixture(scope='module')
def image_pkl(tmp_path_factory):
    G = networks_stylegan3.Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3, channel_base=256, channel_max=8)
    return save_snapshot(tmp_path_factory.mktemp('net') / 'image-snapshot.pkl', G)

def frames_of(G, videos, num_frames, **kwargs):
    """All frames of the videos: uint8 [V, F, C, H, W]."""
    return torch.cat(list(gen_video.generate_frames(G, videos, num_frames, **kwargs)), dim=1)

def run_cli(*args):
    """gen_video.run in this process: (exit code or message, stderr)."""
    try:
        gen_video.run(list(args))
    except SystemExit as exit:
        return exit.code
    return 0

#----------------------------------------------------------------------------

MEASURE = '''
import resource, sys
import gen_video
gen_video.run(sys.argv[1:])
print('maxrss_kib', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
'''

def peak_rss_of_cli(*args):
    result = subprocess.run([sys.executable, '-c', MEASURE, *args], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return int(result.stdout.split('maxrss_kib')[-1])

def test_long_video_has_every_frame_and_memory_flat_in_length(video_pkl, tmp_path):
    rss = {}
    for frames in [200, 2000]:
        outdir = tmp_path / str(frames)
        rss[frames] = peak_rss_of_cli(f'--network={video_pkl}', f'--frames={frames}', '--batch=16', f'--outdir={outdir}')
        path = outdir / 'seed0000.mp4'
        assert os.listdir(outdir) == ['seed0000.mp4']
        assert imageio_ffmpeg.count_frames_and_secs(str(path)) == (frames, frames / 10) # the snapshot's fps
        assert len(iio.imread(path)) == frames
    assert abs(rss[2000] - rss[200]) <= 0.1 * rss[200], rss

def test_chunked_generation_equals_one_piece(G):
    videos = [(0, 0), (1, 5), (2, 7)]
    one_piece = frames_of(G, videos, 30, batch=3 * 30, start=2.5, step=0.75)
    for batch in [1, 4, 3 * 7]:
        assert torch.equal(frames_of(G, videos, 30, batch=batch, start=2.5, step=0.75), one_piece)
    assert one_piece.shape == (3, 30, 3, 16, 16)

def test_start_and_speed_set_the_frame_times(G):
    normal = frames_of(G, [(3, 3)], 20)
    assert torch.equal(frames_of(G, [(3, 3)], 5, start=10)[0], normal[0, 10:15])
    assert torch.equal(frames_of(G, [(3, 3)], 10, step=2)[0], normal[0, ::2])

#----------------------------------------------------------------------------

@pytest.mark.parametrize('num_frames, speed, period', [(32, 1, 32), (30, 1, 32), (10, 1, 12), (1, 1, 4), (100, 0.5, 52), (7, 3, 20)])
def test_loop_period_is_the_nearest_multiple_of_the_key_distance(num_frames, speed, period):
    step, loop_period = gen_video.loop_timing(num_frames, speed, 4)
    assert loop_period == period and step == Fraction(period, num_frames)

@pytest.mark.parametrize('num_frames, speed', [(24, 1), (30, 1), (13, 0.7)])
def test_loop_frame_n_equals_frame_0(G, num_frames, speed):
    step, period = gen_video.loop_timing(num_frames, speed, G.motion_z_distance)
    frames = frames_of(G, [(0, 0), (1, 9)], num_frames + 1, start=3, step=step, motion_period=period, batch=5)
    assert torch.equal(frames[:, num_frames], frames[:, 0])
    assert not torch.equal(frames[:, num_frames // 2], frames[:, 0])  # it moves in between

def test_loop_cli_writes_exactly_the_frames_asked_for(video_pkl, tmp_path):
    assert run_cli(f'--network={video_pkl}', '--frames=30', '--loop', '--format=png', f'--outdir={tmp_path}') == 0
    assert len(os.listdir(tmp_path / 'seed0000')) == 30

#----------------------------------------------------------------------------

class Recorder(torch.nn.Module):
    """Wraps G and records the content codes and motion seeds of every call."""
    def __init__(self, G):
        super().__init__()
        self.G, self.z_dim, self.c_dim, self.calls = G, G.z_dim, G.c_dim, []

    def forward(self, z, c, **kwargs):
        self.calls.append((z.clone(), list(kwargs['motion_seeds'])))
        return self.G(z, c, **kwargs)

def test_decompose_rows_share_content_and_columns_share_motion(G):
    (name, videos, grid), = gen_video.plan_outputs(seeds=[0, 1], motion_seeds=[10, 11, 12], grid=None, decompose=True)
    assert grid == (3, 2) and name == 'decompose3x2-seed0000-motion0010'
    recorder = Recorder(G)
    clips = frames_of(recorder, videos, 6, batch=12)
    z, motion_seeds = recorder.calls[0]
    z, motion_seeds = z.reshape(2, 3, -1), np.reshape(motion_seeds, (2, 3))                 # [rows, cols, ...]
    assert all(torch.equal(z[row, col], gen_video.content_z(G, [0, 1][row])[0]) for row in range(2) for col in range(3))
    assert (motion_seeds == [[10, 11, 12], [10, 11, 12]]).all()
    tiled = gen_video.video_io.tile_clips(clips, grid)                                      # [F, 2*16, 3*16, C]
    for row, content in enumerate([0, 1]):
        for col, motion in enumerate([10, 11, 12]):
            alone = frames_of(G, [(content, motion)], 6)[0].permute(0, 2, 3, 1).numpy()     # [F, H, W, C]
            assert np.array_equal(tiled[:, row * 16:(row + 1) * 16, col * 16:(col + 1) * 16], alone)

def test_motion_seed_varies_motion_with_fixed_content(G):
    outputs = gen_video.plan_outputs(seeds=[4], motion_seeds=[0, 1], grid=None, decompose=False)
    assert [(name, videos) for name, videos, _ in outputs] == [('seed0004-motion0000', [(4, 0)]), ('seed0004-motion0001', [(4, 1)])]
    a, b = frames_of(G, [(4, 0), (4, 1)], 8)
    assert not torch.equal(a, b)

def test_grid_and_decompose_cli_write_one_tiled_video(video_pkl, tmp_path):
    assert run_cli(f'--network={video_pkl}', '--frames=5', '--grid=3x2', f'--outdir={tmp_path}') == 0
    assert run_cli(f'--network={video_pkl}', '--frames=5', '--decompose', '--seeds=0-1', '--motion-seed=3-5', '--fps=5', f'--outdir={tmp_path}') == 0
    assert sorted(os.listdir(tmp_path)) == ['decompose3x2-seed0000-motion0003.mp4', 'grid3x2-seed0000.mp4']
    assert iio.imread(tmp_path / 'grid3x2-seed0000.mp4').shape == (5, 32, 48, 3)
    assert imageio_ffmpeg.count_frames_and_secs(str(tmp_path / 'decompose3x2-seed0000-motion0003.mp4')) == (5, 1.0)

#----------------------------------------------------------------------------

def test_image_only_pickle_gets_one_line_and_a_way_forward(image_pkl, tmp_path):
    result = subprocess.run([sys.executable, 'gen_video.py', f'--network={image_pkl}', f'--outdir={tmp_path}'],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and 'Traceback' not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith('error: ') and 'image-only' in last and 'train_video.py --stage=video' in last
    assert os.listdir(tmp_path) == []

@pytest.mark.parametrize('case', ['missing pickle', 'not a pickle', 'frames=0', 'negative batch', 'unwritable outdir',
    'grid of another size', 'bad seeds'])
def test_bad_input_gives_one_line_and_no_file(case, video_pkl, tmp_path, capsys):
    (tmp_path / 'junk.pkl').write_bytes(b'not a pickle at all')
    (tmp_path / 'a_file').write_text('')
    args = dict(network=video_pkl, outdir=tmp_path / 'out')
    extra = []
    if case == 'missing pickle': args['network'] = tmp_path / 'missing.pkl'
    if case == 'not a pickle': args['network'] = tmp_path / 'junk.pkl'
    if case == 'frames=0': extra = ['--frames=0']
    if case == 'negative batch': extra = ['--batch=-4']
    if case == 'unwritable outdir': args['outdir'] = tmp_path / 'a_file' / 'out'
    if case == 'grid of another size': extra = ['--grid=2x2', '--seeds=0-2']
    if case == 'bad seeds': extra = ['--seeds=a-b']
    message = run_cli(f'--network={args["network"]}', f'--outdir={args["outdir"]}', '--frames=3', *extra)
    assert isinstance(message, str) and message.startswith('error: ') and '\n' not in message, message
    assert 'Traceback' not in capsys.readouterr().err
    assert not (tmp_path / 'out').exists() or os.listdir(tmp_path / 'out') == []

def test_parse_range_accepts_upstream_seed_lists():
    assert gen_video.parse_range('0,1,4-6') == [0, 1, 4, 5, 6]
    assert gen_video.parse_range(' 7 ') == [7]
    assert gen_video.parse_grid('4x2') == (4, 2)

#----------------------------------------------------------------------------
